/** QR helpers for browser tests: decode an element screenshot, and build a fake-camera .y4m from it. */
import jsQR from 'jsqr';
import { PNG } from 'pngjs';
import { writeFileSync } from 'node:fs';

export function decodeQrPng(png: Buffer): string {
  const img = PNG.sync.read(png);
  const code = jsQR(new Uint8ClampedArray(img.data.buffer, img.data.byteOffset, img.data.length), img.width, img.height);
  if (code === null) throw new Error('no QR code found in the image');
  return code.data;
}

/**
 * Writes a 640x480 YUV4MPEG2 (I420) file showing `png` centred on white; Chromium's fake capture
 * device loops it (platform.md). Luma from the RGB pixels, chroma neutral (128).
 */
export function writeY4m(file: string, png: Buffer, frames = 2): void {
  const img = PNG.sync.read(png);
  const W = 640;
  const H = 480;
  if (img.width > W || img.height > H) throw new Error(`QR image ${img.width}x${img.height} is larger than the ${W}x${H} frame`);
  const y = new Uint8Array(W * H).fill(235);
  const ox = Math.floor((W - img.width) / 2);
  const oy = Math.floor((H - img.height) / 2);
  for (let row = 0; row < img.height; row++) {
    for (let col = 0; col < img.width; col++) {
      const i = (row * img.width + col) * 4;
      const luma = 0.299 * (img.data[i] ?? 0) + 0.587 * (img.data[i + 1] ?? 0) + 0.114 * (img.data[i + 2] ?? 0);
      y[(oy + row) * W + ox + col] = Math.round(16 + (luma * 219) / 255);
    }
  }
  const chroma = new Uint8Array((W / 2) * (H / 2)).fill(128);
  const header = Buffer.from(`YUV4MPEG2 W${W} H${H} F30:1 Ip A1:1 C420jpeg\n`);
  const parts: Buffer[] = [header];
  for (let f = 0; f < frames; f++) parts.push(Buffer.from('FRAME\n'), Buffer.from(y), Buffer.from(chroma), Buffer.from(chroma));
  writeFileSync(file, Buffer.concat(parts));
}
