import { randomHex } from '../../src/random-hex';

describe('randomHex', () => {
  it('gives hex of the length asked for, across refills of its pool, never the same twice', () => {
    const seen = new Set<string>();
    // 12-byte ids: 341 fit in one 4 KiB pool, so 2,000 draws refill it five times.
    for (let i = 0; i < 2_000; i += 1) {
      const id = randomHex(12);
      expect(id).toMatch(/^[0-9a-f]{24}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(2_000);
    expect(randomHex(9)).toMatch(/^[0-9a-f]{18}$/);
  });

  it('spreads its output over every hex digit', () => {
    const counts = new Map<string, number>();
    for (const ch of Array.from({ length: 500 }, () => randomHex(16)).join('')) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    // 16,000 digits: each of 16 expected ~1,000 times; a stuck or repeated pool would skew this.
    expect(counts.size).toBe(16);
    for (const n of counts.values()) expect(n).toBeGreaterThan(800);
  });

  it('refuses more than its pool holds', () => {
    expect(() => randomHex(4097)).toThrow(RangeError);
  });
});
