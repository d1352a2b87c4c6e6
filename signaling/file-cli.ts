/**
 * Files in `zeroroom host` / `zeroroom join` (README "Headless client", docs/PROTOCOL.md 5.17): the
 * disk FileStore (file-store.ts) for the driver, the file commands of stdin and the file events of
 * stdout. `send-file` hashes the file with node:crypto while streaming it (memory stays bounded),
 * then offers it; with --download-dir every offered file is accepted and written there under its
 * safe name. Progress lines are throttled to at most PROGRESS_PER_SECOND per file (the last one
 * always prints).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fromHex, systemRandom, toHex } from '../crypto/index.ts';
import { asFileId, MAX_FILE_SIZE, safeFileName, type FileId } from '../protocol/files/offer.ts';
import type { DriverEvent } from '../protocol/room/driver-ports.ts';
import type { RoomFiles, RoomFilesOptions } from '../protocol/room/file-driver.ts';
import { nodeAead } from './aead-node.ts';
import { DiskFileStore } from './file-store.ts';
import { CommandError, errorJson, type FileCommand } from './json-lines.ts';
import type { DriverIo } from './room-cli.ts';
import type { StateDir } from './state-dir.ts';

export const PROGRESS_PER_SECOND = 4;

export class FileCli {
  private files: RoomFiles | null = null;
  private readonly lastProgress = new Map<string, number>();

  private constructor(
    private readonly io: DriverIo,
    readonly store: DiskFileStore,
    private readonly downloadDir: string | undefined,
    private readonly role: 'owner' | 'member',
  ) {}

  /** The store under --state DIR/files (resumable), or a temporary directory. */
  static async open(io: DriverIo, state: StateDir | null, downloadDir: string | undefined, role: 'owner' | 'member'): Promise<FileCli> {
    const dir = state?.filesDir ?? (await mkdtemp(path.join(os.tmpdir(), 'zeroroom-files-')));
    const record = state === null ? null : { read: () => state.readFiles(), write: (b: Uint8Array) => state.writeFiles(b) };
    return new FileCli(io, await DiskFileStore.open(dir, record), downloadDir === undefined ? undefined : path.resolve(downloadDir), role);
  }

  /** What the room driver is given (MemberDriverOptions.files / OwnerDriverOptions.files). */
  driverOptions(historyBytes?: number): RoomFilesOptions {
    return { store: this.store, aead: nodeAead, ...(historyBytes !== undefined ? { historyBytes } : {}) };
  }

  attach(files: RoomFiles | null): void {
    this.files = files;
  }

  /** A file driver event as JSON lines; false for other events. */
  event(e: DriverEvent): boolean {
    switch (e.kind) {
      case 'file-offered':
        this.io.out({
          event: 'file-offered',
          file: toHex(e.offer.file),
          name: safeFileName(e.offer.name),
          size: e.offer.size,
          mime: e.offer.mime,
          from: e.from,
          sender: e.name,
          index: e.index,
        });
        if (this.downloadDir !== undefined) this.files?.accept(e.offer.file);
        return true;
      case 'file-progress': {
        const id = toHex(e.file);
        const now = Date.now();
        const last = this.lastProgress.get(id) ?? 0;
        if (e.done < e.count && now - last < 1000 / PROGRESS_PER_SECOND) return true;
        this.lastProgress.set(id, now);
        this.io.out({ event: 'file-progress', file: id, direction: e.direction, done: e.done, count: e.count });
        return true;
      }
      case 'file-received':
        void this.received(e.offer.file).catch((err: unknown) => this.io.out(errorJson(err)));
        return true;
      case 'file-ended':
        this.lastProgress.delete(toHex(e.file));
        this.io.out({ event: 'file-ended', file: toHex(e.file), code: e.code });
        return true;
      default:
        return false;
    }
  }

  private async received(file: FileId): Promise<void> {
    const offer = this.files?.offerOf(file);
    if (offer == null) return;
    this.lastProgress.delete(toHex(file));
    if (this.downloadDir === undefined) {
      this.io.out({
        event: 'file-received',
        file: toHex(file),
        name: safeFileName(offer.name),
        size: offer.size,
        path: this.store.pathOf(offer),
      });
      return;
    }
    const written = await this.store.export(offer, this.downloadDir);
    // A member keeps no copy of its own (it serves nobody); the owner keeps relay copies as history.
    if (this.role === 'member') await this.store.remove(file);
    this.io.out({ event: 'file-received', file: toHex(file), name: safeFileName(offer.name), size: offer.size, path: written });
  }

  command(cmd: FileCommand): void {
    const report = (e: unknown): void => this.io.out(errorJson(e));
    const files = this.files;
    if (files === null) return report(new CommandError('cli.command', 'files are not available in this client'));
    try {
      switch (cmd.cmd) {
        case 'send-file':
          return void this.sendFile(files, cmd.path).catch(report);
        case 'accept-file':
          return files.accept(asFileId(fromHex(cmd.file, 16)));
        case 'decline-file':
          return files.decline(asFileId(fromHex(cmd.file, 16)));
        case 'cancel-file':
          return files.cancel(asFileId(fromHex(cmd.file, 16)));
      }
    } catch (e) {
      report(e);
    }
  }

  /** Hash while streaming (node:crypto), register the path, then offer it. */
  private async sendFile(files: RoomFiles, file: string): Promise<void> {
    const full = path.resolve(file);
    let info;
    try {
      info = await stat(full);
    } catch (e) {
      throw new CommandError('cli.file', `${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    }
    if (!info.isFile()) throw new CommandError('cli.file', `${file}: not a regular file`);
    if (info.size > MAX_FILE_SIZE) throw new CommandError('cli.file', `${file}: larger than ${MAX_FILE_SIZE} bytes`);
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(full, { highWaterMark: 1024 * 1024 })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    if (size !== info.size) throw new CommandError('cli.file', `${file}: changed while it was read`);
    const id = asFileId(systemRandom(16));
    await this.store.addSource(id, full);
    const offer = await files.send({ name: path.basename(full), size, mime: '', hash: new Uint8Array(hash.digest()), id });
    this.io.out({ event: 'file-sent', file: toHex(offer.file), name: offer.name, size: offer.size });
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
