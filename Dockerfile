# ZeroRoom signaling server + web app. Build: docker build -t zeroroom .
# Run:   docker run -d -p 8765:8765 -v zeroroom-data:/data zeroroom
# The server key lives in the /data volume: back it up (docs/OPERATIONS.md, "Key file").

# Stage 1: build the web app (vite is a dev dependency).
FROM node:20-slim AS web
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-fund --no-audit
COPY . .
RUN npm run build:web

# Stage 2: runtime. No build step for the server: bin/zeroroom.js runs the TypeScript through tsx,
# which is a runtime dependency, so --omit=dev is enough.
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-fund --no-audit && npm cache clean --force
COPY bin ./bin
COPY crypto ./crypto
COPY protocol ./protocol
COPY signaling ./signaling
COPY tsconfig.json ./
COPY --from=web /src/web/dist ./web/dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8765
# Listen on all interfaces inside the container; publish the port (or put a TLS proxy in front).
ENV ZEROROOM_HOST=0.0.0.0 \
    ZEROROOM_PORT=8765 \
    ZEROROOM_KEY_FILE=/data/server.key
HEALTHCHECK --interval=30s --timeout=5s \
  CMD node -e "fetch('http://127.0.0.1:8765/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# SIGTERM (docker stop) closes clients with 1001 and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/zeroroom.js"]
CMD ["serve"]
