import { generateBoxKeyPair, generateSymmetricKey, fromHex } from '../crypto/index.ts';
import { startOwner } from '../protocol/link/owner.ts';
import { joinRoom } from '../protocol/link/member.ts';
(window as any).zr = { generateBoxKeyPair, generateSymmetricKey, fromHex, startOwner, joinRoom };
