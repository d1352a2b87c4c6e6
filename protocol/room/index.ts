// The room protocol (docs/PROTOCOL.md section 5): pure machines for the owner and members.
export * from './types.ts';
export * from './errors.ts';
export {
  LABEL,
  ZERO_HASH,
  memberIdOf,
  peerKeyHex,
  inviteIdOf,
  saltyAuthToken,
  safetyCode,
  fingerprint,
  roomIdOf,
  ownerKeyCommit,
  keyHashOf,
} from './ids.ts';
export {
  type Invite,
  type InviteParams,
  encodeInviteV1,
  encodeInviteV2,
  decodeInvite,
  defaultServerFor,
  inviteUrl,
  decodeInviteUrl,
  checkInviteFresh,
} from './invite.ts';
export {
  decodeToOwner,
  decodeToMember,
  encodeMessage,
  type ToOwner,
  type ToMember,
  MAX_TEXT,
  MAX_NAME,
  MAX_MEMBERS,
  MAX_LINK_MESSAGE,
} from './codec.ts';
export {
  createRoom,
  ownerStep,
  currentEpoch,
  chainHead,
  pendingAuthTokens,
  memberPeerKeys,
  ownerSafetyCode,
  inviteStatus,
  type CreateRoomOptions,
} from './owner.ts';
export { startJoin, memberStep, memberSafetyCode, type StartJoinOptions } from './member.ts';
export { memberList, type MemberListEntry } from './roster.ts';
export {
  encodeOwnerState,
  decodeOwnerState,
  encodeMemberState,
  decodeMemberState,
  decodeRoomState,
  STATE_VERSION,
  MAX_STATE_BYTES,
  MAX_STORED_RECORDS,
} from './state-codec.ts';
