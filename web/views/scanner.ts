/**
 * In-app QR scanner for devices whose camera app does not open links: getUserMedia + jsqr on canvas
 * frames (BarcodeDetector is missing in Linux Chromium). Resolves with the first invite link found,
 * or null when the user cancels.
 */
import jsQR from 'jsqr';
import { h } from '../dom.ts';
import { S } from '../strings.ts';

export function looksLikeInvite(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hash.startsWith('#join=');
  } catch (e) {
    if (e instanceof TypeError) return false; // not a URL at all: keep scanning
    throw e;
  }
}

export async function openScanner(area: HTMLElement): Promise<string | null> {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  const video = h('video', { className: 'scanner-video', testid: 'scanner-video', attrs: { playsinline: '', muted: '' } });
  const cancel = h('button', { text: S.scanCancel, testid: 'scan-cancel', attrs: { type: 'button' } });
  const status = h('p', { className: 'muted', testid: 'scan-status', text: S.scanPoint });
  area.replaceChildren(video, status, cancel);
  video.srcObject = stream;
  video.muted = true;
  await video.play();
  const canvas = document.createElement('canvas');
  const g = canvas.getContext('2d', { willReadFrequently: true });
  if (g === null) throw new Error('no 2d canvas');

  return new Promise<string | null>((resolve) => {
    let done = false;
    const finish = (value: string | null): void => {
      if (done) return;
      done = true;
      for (const track of stream.getTracks()) track.stop();
      area.replaceChildren();
      resolve(value);
    };
    cancel.addEventListener('click', () => finish(null));
    const tick = (): void => {
      if (done) return;
      if (video.videoWidth > 0) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        g.drawImage(video, 0, 0);
        const img = g.getImageData(0, 0, canvas.width, canvas.height);
        const code = jsQR(img.data, img.width, img.height, { inversionAttempts: 'dontInvert' });
        if (code !== null && looksLikeInvite(code.data)) {
          finish(code.data);
          return;
        }
        if (code !== null) status.textContent = S.scanNotInvite;
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}
