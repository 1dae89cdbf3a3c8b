/** A 6-byte Ethernet address (treat as immutable). The codec in src/wire/ethernet.ts parses and prints it. */
export type MacAddr = Uint8Array;
