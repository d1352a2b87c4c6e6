// File transfers (docs/PROTOCOL.md 5.17): offers, chunks, control messages, the two machines.
export * from './errors.ts';
export * from './offer.ts';
export * from './chunk.ts';
export * from './control.ts';
export * from './receiver.ts';
export * from './sender.ts';
export * from './history.ts';
export * from './transfers.ts';
