/**
 * Decoder for the server's /config.json ({iceServers, appUrl, signalingUrl, serverKey}). It comes
 * over the network, so it is checked field by field, never cast.
 */
import type { IceServerSetting, ServerConfig } from './types.ts';

function str(o: Record<string, unknown>, key: string, max = 2048): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length > max) throw new TypeError(`/config.json: ${key} must be a string`);
  return v;
}

function iceServer(raw: unknown): IceServerSetting {
  if (typeof raw !== 'object' || raw === null) throw new TypeError('/config.json: iceServers[] must be objects');
  const o = raw as Record<string, unknown>;
  const urlsRaw = o['urls'];
  const urls = typeof urlsRaw === 'string' ? [urlsRaw] : urlsRaw;
  if (!Array.isArray(urls) || urls.length > 16 || !urls.every((u): u is string => typeof u === 'string' && u.length <= 2048)) {
    throw new TypeError('/config.json: iceServers[].urls must be strings');
  }
  return {
    urls,
    ...(o['username'] !== undefined ? { username: str(o, 'username', 512) } : {}),
    ...(o['credential'] !== undefined ? { credential: str(o, 'credential', 512) } : {}),
  };
}

export function parseServerConfig(json: unknown): ServerConfig {
  if (typeof json !== 'object' || json === null) throw new TypeError('/config.json must be an object');
  const o = json as Record<string, unknown>;
  const ice = o['iceServers'] ?? [];
  if (!Array.isArray(ice) || ice.length > 32) throw new TypeError('/config.json: iceServers must be an array');
  return {
    iceServers: ice.map(iceServer),
    appUrl: str(o, 'appUrl').replace(/\/+$/, ''),
    signalingUrl: str(o, 'signalingUrl'),
    serverKey: typeof o['serverKey'] === 'string' ? str(o, 'serverKey', 128) : '',
  };
}
