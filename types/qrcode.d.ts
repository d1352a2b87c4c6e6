// The part of `qrcode` (1.5) that the app and tests use. Declared here instead of @types/qrcode,
// which references Node's types: web/ must compile without them.
declare module 'qrcode' {
  export type ErrorCorrectionLevel = 'L' | 'M' | 'Q' | 'H' | 'low' | 'medium' | 'quartile' | 'high';
  export interface QRCodeOptions {
    errorCorrectionLevel?: ErrorCorrectionLevel;
    /** Force a symbol version (1-40); by default the smallest that fits. */
    version?: number;
    margin?: number;
    scale?: number;
    width?: number;
    color?: { dark?: string; light?: string };
  }
  export interface QRCodeSymbol {
    readonly version: number;
    readonly errorCorrectionLevel: { readonly bit: number };
    readonly modules: { readonly size: number; get(row: number, col: number): number };
  }
  export function create(text: string, options?: QRCodeOptions): QRCodeSymbol;
  /** `canvas`: an HTMLCanvasElement (typed loosely so that Node code can use this file without the DOM). */
  export function toCanvas(canvas: object, text: string, options?: QRCodeOptions): Promise<void>;
  export function toString(
    text: string,
    options?: QRCodeOptions & { type?: 'utf8' | 'terminal' | 'svg'; small?: boolean },
  ): Promise<string>;
  export function toDataURL(text: string, options?: QRCodeOptions): Promise<string>;
  const QRCode: { create: typeof create; toCanvas: typeof toCanvas; toString: typeof toString; toDataURL: typeof toDataURL };
  export default QRCode;
}
