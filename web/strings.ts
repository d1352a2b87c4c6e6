/**
 * Every piece of text the app shows a person, in one place, so it can be translated later (one
 * module per language with the same shape). Views never build sentences themselves and never show
 * an error's `message` or `code` as the sentence: `errorText` maps a code to words, and the code
 * itself goes at most into a details line.
 *
 * Part of the initial chunk (the lock screen uses it): no heavy imports here.
 */
import { ZeroRoomError } from '../protocol/errors.ts';

export type RoomState = 'joining' | 'refused' | 'member' | 'owner-offline' | 'owner-away' | 'reconnecting' | 'removed' | 'left';
export type Delivery = 'queued' | 'at-owner' | 'delivered';

export const S = {
  appName: 'ZeroRoom',
  loading: 'Loading ZeroRoom…',

  // Lock screen
  lockTitleFirstRun: 'Welcome to ZeroRoom',
  lockTitle: 'Unlock ZeroRoom',
  lockIntroFirstRun: 'Choose a password for this device. It encrypts your keys and messages here; nobody can recover it if you forget it.',
  lockIntro: 'Enter your password to open your rooms.',
  password: 'Password',
  repeatPassword: 'Repeat password',
  createPassword: 'Set password',
  unlock: 'Unlock',
  unlocking: 'Unlocking…',
  passwordsDiffer: 'The two passwords are not the same. Type them again.',
  passwordTooShort: 'Choose a password of at least 8 characters.',
  currentPasswordWrong: 'The current password is not right.',

  // Insecure context (before any password is asked)
  insecureTitle: 'This address cannot keep your messages safe',
  insecureBody: 'The browser turns off the encryption ZeroRoom needs on plain http:// addresses, except on this device itself.',
  insecureWhat: 'What to do instead:',
  insecureHttps: 'open the app over https:// (ask whoever runs the server to set up a certificate), or',
  insecureLocalhost: 'on the computer that runs the server, open http://localhost with the same port.',
  storageUnavailable: 'This browser does not let ZeroRoom store data here (a private window can do that). Open it in a normal window.',

  // Shell
  navRooms: 'Rooms',
  navSettings: 'Settings',
  details: 'Details:',
  dismiss: 'Dismiss',

  // Home
  homeTitle: 'Your rooms',
  yourName: 'Your name',
  yourNameHint: 'how others see you',
  noRooms: 'No rooms yet. Create one, or open an invite link someone sent you.',
  createTitle: 'Create a room',
  roomName: 'Room name',
  roomNamePlaceholder: 'e.g. Family',
  createRoom: 'Create room',
  joinTitle: 'Join a room',
  inviteLink: 'Invite link',
  inviteLinkPlaceholder: 'Paste an invite link',
  join: 'Join',
  scanQr: 'Scan QR code',
  scanCancel: 'Stop scanning',
  scanPoint: 'Point the camera at an invite QR code.',
  scanNotInvite: 'That QR code is not a ZeroRoom invite.',
  chooseNameThenJoin: 'Choose your name, then press Join.',
  ownerTag: 'owner',
  unreadLabel: (n: number): string => (n === 1 ? '1 unread message' : `${n} unread messages`),

  // Room
  roomNotFound: 'This room is no longer on this device.',
  roomKey: 'Key version',
  safetyCode: 'Safety code',
  safetyCodeHint: 'Compare it with the others in person or on a call: if it is the same everywhere, nobody is in between.',
  messages: 'Messages',
  messageLabel: 'Message',
  composerWaiting: 'Message (sent when the owner is back)',
  send: 'Send',
  members: 'Members',
  you: 'you',
  ownerMark: 'owner',
  yourConnection: 'your connection:',
  remove: 'Remove',
  removeMember: (name: string): string => `Remove ${name}`,
  confirmRemoveTitle: (name: string): string => `Remove ${name} from this room?`,
  confirmRemoveBody: 'They stop receiving messages at once, and the room gets a new key.',
  rotateKey: 'Change the room key now',
  leave: 'Leave room',
  confirmLeaveTitle: 'Leave this room?',
  confirmLeaveBody: 'You will stop receiving messages. To come back you need a new invite.',
  forget: 'Remove from this device',
  confirmForgetTitle: (name: string): string => `Remove "${name}" from this device?`,
  confirmForgetBody: 'Its keys and history on this device are deleted. This cannot be undone.',
  cancel: 'Cancel',
  notifyOn: 'Notifications on',
  notifyOff: 'Notify me',
  notifyBlocked: 'Notifications are blocked for this site. Allow them in the browser settings to turn them on.',
  notificationFrom: (sender: string, text: string): string => `${sender}: ${text}`,
  systemJoined: (name: string): string => `${name} joined`,
  systemLeft: (name: string): string => `${name} left`,
  systemRemoved: (name: string): string => `${name} was removed`,
  systemNewKey: 'The room key changed',
  systemYourKeysReplaced: 'Your keys for this room were replaced; a copy of the old ones gets nothing new',
  systemKeysReplaced: (name: string): string => `${name} replaced their keys`,
  systemOwnerKeysReplaced: (revoked: number): string =>
    `Your keys for this room were replaced; a copy of the old ones gets nothing new${revoked > 0 ? ` (${revoked} open invite link${revoked === 1 ? '' : 's'} revoked)` : ''}`,
  systemYouJoined: 'You joined the room',
  systemYouLeft: 'You left the room',
  systemYouRemoved: 'You were removed from the room',
  systemHistorySkipped: (n: number): string => (n === 1 ? 'An earlier message cannot be shown.' : `${n} earlier messages cannot be shown.`),
  systemSendRefused: 'One of your messages was not accepted by the owner.',
  /** What a member detected about the owner's conduct (PROTOCOL.md 5.13 warnings). */
  systemSecondSession: (member: string | null): string =>
    `${member ?? 'A member'} connected from a second place while already connected. If that was not them (a new device, a reload), someone may have copied their keys: remove them and invite them again.`,
  systemWarning: (code: string, sender: string | null): string => {
    switch (code) {
      case 'membership-withheld':
        return "The owner's device did not tell you about a change of who is in this room. Compare the safety code with the others.";
      case 'membership-unverified':
        return 'You were away for long: changes to who is in this room while you were away cannot be checked. Compare the safety code with the others.';
      case 'message-withheld':
        return sender === null
          ? "A message was held back from you by the owner's device."
          : `A message from ${sender} was held back from you by the owner's device.`;
      default:
        return "Something about the owner's device looks wrong. Compare the safety code with the others.";
    }
  },

  // Room states: a short label (the status pill) and a sentence saying what it means for you.
  state: {
    joining: {
      label: 'Joining…',
      text: "Waiting for the owner's device to let you in. The owner needs to have ZeroRoom open.",
    },
    refused: { label: 'Not let in', text: 'The owner did not let you in.' },
    member: { label: 'Connected', text: '' },
    'owner-offline': {
      label: 'Owner offline',
      text: "The owner's device is offline. Messages you send wait on this device and go out when the owner is back.",
    },
    'owner-away': {
      label: 'Owner away — talking directly',
      text: "The owner's device is offline. You are talking directly with the members who are online; what is said goes into the room when the owner is back.",
    },
    reconnecting: {
      label: 'Reconnecting…',
      text: 'The connection dropped; trying again. Messages you send wait on this device until it is back.',
    },
    removed: { label: 'Removed', text: 'You were removed from this room. Nothing new will arrive.' },
    left: { label: 'Left', text: 'You left this room. Nothing new will arrive.' },
  } satisfies Record<RoomState, { label: string; text: string }>,
  ownerOpen: 'Open: members can join and send messages.',
  ownerReconnecting:
    'Connecting to the signaling server… People already connected can still chat; nobody can join or reconnect until it is reachable.',
  delivery: {
    queued: 'Waiting to be sent',
    'at-owner': "At the owner's device",
    delivered: 'Delivered to the room',
  } satisfies Record<Delivery, string>,
  deliveryIcon: { queued: '🕓', 'at-owner': '✓', delivered: '✓✓' } satisfies Record<Delivery, string>,
  connection: {
    connecting: 'connecting',
    direct: 'direct',
    relayed: 'relayed via TURN',
    restarting: 'reconnecting',
    fallback: 'via server (no direct path)',
    offline: 'offline',
    closed: 'closed',
    'out-of-step': 'out of step: waits for the owner',
  } as Record<string, string>,

  // Invite panel
  inviteTitle: 'Invite someone',
  inviteHint: 'Each invite lets one person in. Show the QR code, or send the link over a channel you trust.',
  inviteExpiresAfter: 'Invite expires after',
  expiryChoices: [
    ['10 minutes', 10],
    ['1 hour', 60],
    ['1 day', 24 * 60],
  ] as ReadonlyArray<readonly [string, number]>,
  newInvite: 'New invite',
  inviteQr: 'Invite QR code',
  copyLink: 'Copy link',
  copied: 'Copied',
  selectedPressCopy: 'Selected: press Ctrl+C',
  share: 'Share…',
  shareTitle: (room: string): string => `Join "${room}" on ZeroRoom`,
  revoke: 'Withdraw invite',
  showQrAnyway: 'Show the QR code anyway',
  inviteLoopback: (host: string): string =>
    `This invite points at ${host}, which is this computer only: a phone that scans it cannot reach the app.`,
  inviteInsecure: (host: string): string =>
    `This invite uses plain http (${host}): a phone opens it, but without https it cannot unlock the app.`,
  inviteReachFix:
    'To invite a phone, start the server with `npm run start:lan` (or `zeroroom serve --lan`) and open the https address it prints; or set --app-url and --signaling-url to addresses the phone can reach.',
  inviteExpired: 'This invite has expired.',

  // Settings
  settingsTitle: 'Settings',
  connectionTitle: 'Connection',
  signalingUrl: 'Signaling server URL',
  serverKey: 'Pinned server public key (hex)',
  iceServers: 'STUN/TURN servers, one per line: url [username credential]',
  relayOnly: 'Relay only (always use TURN; hides your IP address from the others)',
  rotationTitle: 'Room key changes (rooms you own)',
  rotateMessages: 'New key after this many messages (0 = never)',
  rotateMinutes: 'New key after this many minutes (0 = never)',
  save: 'Save',
  saved: 'Saved.',
  serverDefaults: 'Server defaults',
  changePasswordTitle: 'Change password',
  currentPassword: 'Current password',
  newPassword: 'New password',
  changePassword: 'Change password',
  reencrypting: 'Re-encrypting…',
  passwordChanged: 'Password changed; everything on this device is encrypted with the new one.',
  passwordChangedReplaceKeys:
    'A copy of this device taken before still opens with the old password. If that may have happened, replace your keys in the rooms you joined (below).',
  replaceKeys: 'Replace my keys',
  replaceKeysAsked: 'New keys requested; they take effect when the owner is online.',
  replaceKeysOwnerDone: 'Your keys for this room were replaced. Invite links made before no longer work; make new ones.',
  forgetTitle: 'Rooms on this device',
  buildHash: (hash: string | null): string => `App build: ${hash ?? 'development (no build hash)'}`,
  rollbackRefused: (n: number): string =>
    n === 1
      ? 'One room was not opened: its stored record is older than the last one this device saved, so someone may have put back an old copy. Nothing was deleted.'
      : `${n} rooms were not opened: their stored records are older than the last ones this device saved, so someone may have put back old copies. Nothing was deleted.`,
  integrityFailed: (n: number): string =>
    n === 1
      ? 'One stored record failed its integrity check and was not loaded.'
      : `${n} stored records failed their integrity check and were not loaded.`,

  // Settings → Connection diagnostics (web/views/diagnostics.ts).
  diagnostics: {
    title: 'Connection diagnostics',
    run: 'Check connection',
    running: 'Checking…',
    done: 'Done.',
    signaling: 'Signaling server',
    signalingReachable: (url: string, ms: number | null): string => `reachable (${url}${ms !== null ? `, ${ms} ms` : ''})`,
    signalingUnreachable: (error: string | null): string => `not reachable (${error ?? 'unknown'})`,
    serverKey: 'Server key',
    serverKeyNone: 'nothing to compare with',
    serverKeyMatches: 'matches the pinned key',
    serverKeyDiffers: 'does NOT match the pinned key',
    stun: 'STUN (your public address)',
    stunNone: 'none found',
    turnUdp: 'TURN over UDP',
    turnTcp: 'TURN over TCP',
    turn: (ok: boolean | null): string => (ok === null ? 'not configured' : ok ? 'allocated' : 'failed'),
    member: (room: string, name: string): string => `${room} / ${name}`,
    notConnected: 'not connected',
    path: {
      host: 'direct (local network)',
      reflexive: 'direct (through NAT)',
      relay: 'relayed via TURN',
      fallback: 'via the signaling server',
    } as Record<string, string>,
    rtt: (ms: number): string => `, ${Math.round(ms)} ms`,
  },

  // Files and pictures in a room (web/views/files.ts, PROTOCOL.md 5.17).
  files: {
    attach: 'Send a file',
    attachLabel: 'Send a file or picture',
    dropHere: 'Drop files here to send them to the room',
    from: (name: string): string => `from ${name}`,
    state: {
      preparing: 'Getting ready…',
      offered: 'Offered',
      waiting: 'Waiting for the others',
      sending: 'Sending',
      receiving: 'Receiving',
      done: 'Received',
      sent: 'Sent',
      declined: 'Declined',
      cancelled: 'Cancelled',
      failed: 'Failed',
      'too-large': 'Too large',
    } as Record<string, string>,
    accept: 'Download',
    decline: 'Decline',
    cancel: 'Cancel',
    save: 'Save',
    saveAs: (name: string): string => `Save ${name}`,
    picture: (name: string): string => `Picture ${name}`,
    notShown: 'Not shown here: only PNG, JPEG, GIF and WebP pictures are shown. Save it to open it with another program.',
    progress: (done: string, total: string): string => `${done} of ${total}`,
    rate: (perSecond: string, left: string | null): string => (left === null ? `${perSecond}/s` : `${perSecond}/s, ${left} left`),
    tooLarge: (limitMiB: number): string =>
      `This file is larger than ${limitMiB} MiB, the largest this device sends or receives. You can change the limit in Settings.`,
    failed: (code: string): string => FILE_FAILURE[code] ?? 'The transfer stopped.',
    limitLabel: 'Largest file to send or receive (MiB)',
    filesTitle: 'Files',
  },
} as const;

/** Why a transfer ended, by its code (PROTOCOL.md 5.17.6). */
const FILE_FAILURE: Record<string, string> = {
  'file.cancelled': 'The transfer was cancelled.',
  'file.declined': 'Declined.',
  'file.hash': 'The file that arrived is not the one that was offered; it was deleted.',
  'file.corrupt': 'Parts of the file kept arriving damaged; the transfer was stopped.',
  'file.gone': 'The file is no longer available.',
  'file.removed': 'The sender or receiver was removed from the room.',
  'file.too-large': 'The file is larger than the limit set on this device.',
  'file.no-path': 'Waiting for a direct connection: files do not go through the server.',
};

/** "1.5 MB"-style sizes (powers of 1024, the way the limit is set). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)} ${units[u] ?? 'B'}`;
}

/** "2 min" / "40 s": a time left, rounded up. */
export function formatSeconds(s: number): string {
  if (s < 60) return `${Math.max(1, Math.ceil(s))} s`;
  if (s < 3600) return `${Math.ceil(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.ceil((s % 3600) / 60)} min`;
}

/** In which situation an error happened: the same code can mean different things (storage.password). */
export type ErrorContext = 'unlock' | 'first-run' | 'change-password' | 'join' | 'general';

/** Errors the web app raises itself (codes `ui.<key>`, docs/PROTOCOL.md section 7). */
export type UiErrorKey = 'name-missing' | 'no-server' | 'no-room' | 'not-owner' | 'bad-ice-url' | 'not-an-invite';

const UI_ERRORS: Record<UiErrorKey, string> = {
  'name-missing': 'Choose your name first: the others see it.',
  'no-server': 'No signaling server is set. Enter one in Settings.',
  'no-room': 'This room is no longer on this device.',
  'not-owner': "Only the room's owner can do that.",
  'bad-ice-url': 'Each STUN/TURN line must start with stun:, stuns:, turn: or turns:.',
  'not-an-invite': 'That is not a ZeroRoom invite link.',
};

const CAMERA_TEXT = 'The camera could not be opened. Allow camera access, or paste the invite link instead.';

/** A person's action cannot be done as asked; the sentence comes from UI_ERRORS by `key`. */
export class UiError extends ZeroRoomError {
  constructor(
    readonly key: UiErrorKey,
    options?: { cause?: unknown },
  ) {
    super(`ui.${key}`, `user interface: ${key}`, options);
  }
}

const INVITE_SUPERSEDED = 'Ask the owner for a new invite.';

/** One sentence per error code a person can meet; codes not listed fall back to a generic sentence. */
const CODE_TEXT: Readonly<Record<string, string>> = {
  'file.too-large': 'This file is larger than the largest this device sends or receives. You can change the limit in Settings.',
  'storage.password': 'That password is not right. Try again.',
  'storage.meta': 'The saved data on this device is damaged: the password check is missing.',
  'storage.exists': 'This device already has a password. Reload the page and unlock.',
  'crypto.init': 'The encryption library did not load. Reload the page; if that does not help, the browser may be too old.',
  'crypto.not-ready': 'The encryption library is still loading. Try again in a moment.',
  'crypto.auth': 'Some data did not pass its integrity check and was not used.',
  'room.invite-unknown': `The owner does not know this invite (it may be for a room that no longer exists). ${INVITE_SUPERSEDED}`,
  'room.invite-used': `This invite was already used: each invite lets one person in. ${INVITE_SUPERSEDED}`,
  'room.invite-expired': `This invite has expired. ${INVITE_SUPERSEDED}`,
  'room.invite-revoked': `The owner withdrew this invite. ${INVITE_SUPERSEDED}`,
  'room.invite-limit': 'Too many invites are open. Withdraw some, or wait until they expire.',
  'room.invite-malformed': 'This invite link is incomplete or damaged. Copy the whole link again, or scan the QR code.',
  'room.join-proof': `The owner's device could not check this invite. ${INVITE_SUPERSEDED}`,
  'room.not-admitted': 'The owner did not let you in.',
  'room.already-member': 'You are already in this room.',
  'room.full': 'This room is full (256 people).',
  'room.forbidden': 'The owner cannot remove themselves.',
  'room.closed': 'This room is closed on this device: you left, were removed or were not let in.',
  'room.bad-state': 'The saved data of this room is damaged.',
  'room.peer-key-taken': `This device's connection key already belongs to someone in the room. ${INVITE_SUPERSEDED}`,
  'room.outbox-full': 'Too many of your messages are still waiting for the owner. Wait until some are delivered.',
  'room.stopped': 'This room was closed on this device.',
  'saltyrtc.initiator-refused': `The owner's device did not let you in: the invite was already used or withdrawn, or the owner removed you from this room earlier. ${INVITE_SUPERSEDED}`,
  'link.invite-expired': `This invite expired before the owner's device let you in. ${INVITE_SUPERSEDED}`,
  'saltyrtc.refused': "The owner's device did not recognise this device yet; trying again.",
  'saltyrtc.dropped': 'The connection to the owner was dropped; trying again.',
  'saltyrtc.server-key': `The signaling server is not the one this invite was made for (its key differs). ${INVITE_SUPERSEDED}`,
  'saltyrtc.no-task': "Your app and the owner's app cannot agree on how to connect. Reload both pages to update them.",
  'saltyrtc.subprotocol': 'The signaling server speaks another protocol. Check the server address in Settings.',
  'saltyrtc.path-full': "Too many devices are connecting to the owner's device right now. Try again later.",
  'saltyrtc.timeout': 'The signaling server stopped answering.',
  'saltyrtc.server': 'Lost the connection to the signaling server.',
  'saltyrtc.peer-closed': "The owner's device went away.",
  'saltyrtc.protocol': 'The signaling server sent something unexpected.',
  'link.timeout': 'The direct connection to the other device did not come up in time.',
  'link.connect': 'The direct connection to the other device failed.',
  'link.closed': 'The connection is closed.',
  'link.too-large': 'A message was too large to send.',
  'link.ice-restart-timeout': 'The network changed and the connection could not be repaired in time.',
  decode: 'Some data was malformed and was not used.',
};

const GENERIC = 'Something went wrong. Try again; if it keeps happening, reload the page.';

export interface ErrorText {
  /** The sentence to show. */
  readonly text: string;
  /** For the details line: a stable code, or the error's class name; null when there is nothing useful. */
  readonly details: string | null;
}

/** An error the app has words for (a refusal, a wrong password): expected, not a bug. */
export function isExpected(t: ErrorText): boolean {
  return t.text !== GENERIC;
}

/** The code a ZeroRoom error carries (also for errors from another bundle copy: duck-typed). */
export function errorCode(e: unknown): string | null {
  if (e instanceof ZeroRoomError) return e.code;
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[a-z]+(\.[a-z-]+)?$/.test(code) ? code : null;
}

/** A code (from a refusal, a failed link) as a sentence; null when the code has no wording. */
export function codeText(code: string): string | null {
  return CODE_TEXT[code] ?? null;
}

/** What to show a person for a failed action. Never uses `e.message`. */
export function errorText(e: unknown, context: ErrorContext = 'general'): ErrorText {
  if (e instanceof UiError) return { text: UI_ERRORS[e.key], details: null };
  const code = errorCode(e);
  if (code === 'storage.password') {
    // The same code covers "wrong password" and "new password too short" (section 7); the form
    // fields enforce the length before submitting, so outside first run it means a wrong password.
    if (context === 'first-run') return { text: S.passwordTooShort, details: null };
    if (context === 'change-password') return { text: S.currentPasswordWrong, details: null };
    return { text: CODE_TEXT['storage.password'] as string, details: null };
  }
  if (code !== null) {
    const known = codeText(code);
    if (known !== null) return { text: known, details: code };
    if (context === 'join' && (code.startsWith('crypto.') || code === 'decode')) {
      return { text: CODE_TEXT['room.invite-malformed'] as string, details: code };
    }
    return { text: GENERIC, details: code };
  }
  if (typeof DOMException !== 'undefined' && e instanceof DOMException) {
    if (e.name === 'NotAllowedError' || e.name === 'NotFoundError' || e.name === 'NotReadableError')
      return { text: CAMERA_TEXT, details: e.name };
    if (e.name === 'AbortError') return { text: GENERIC, details: e.name };
  }
  return { text: GENERIC, details: e instanceof Error ? e.name : null };
}

/** "expires in 9 minutes" / "expired": relative to `now`, rounded the way people say it. */
export function inviteExpiry(expiresAt: number, now: number): string {
  const ms = expiresAt - now;
  if (ms <= 0) return S.inviteExpired;
  const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'always' });
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return `Expires ${rtf.format(Math.max(1, Math.floor(ms / 1000)), 'second')}`;
  if (minutes < 90) return `Expires ${rtf.format(minutes, 'minute')}`;
  const hours = Math.floor(minutes / 60);
  if (hours < 36) return `Expires ${rtf.format(hours, 'hour')}`;
  return `Expires ${rtf.format(Math.floor(hours / 24), 'day')}`;
}

/** The page title: unread messages first, so a background tab shows them. */
export function pageTitle(unread: number): string {
  return unread > 0 ? `(${unread}) ${S.appName}` : S.appName;
}
