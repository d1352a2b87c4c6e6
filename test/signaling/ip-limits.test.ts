import { describe, expect, it } from 'vitest';
import { IpLimits, ipKey } from '../../signaling/ip-limits.ts';

describe('ipKey', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002:ffff::', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('%s -> %s', (ip, key) => expect(ipKey(ip)).toBe(key));
});

describe('IpLimits', () => {
  it('counts open connections per address and frees them', () => {
    const l = new IpLimits(2, 100, () => 0);
    expect([l.admit('1.1.1.1'), l.admit('1.1.1.1'), l.admit('1.1.1.1'), l.admit('2.2.2.2')]).toEqual(['ok', 'ok', 'too-many-per-ip', 'ok']);
    l.release('1.1.1.1');
    expect(l.admit('1.1.1.1')).toBe('ok');
  });
  it('one IPv6 /64 shares one budget', () => {
    const l = new IpLimits(1, 100, () => 0);
    expect([l.admit('2001:db8::1'), l.admit('2001:db8::2')]).toEqual(['ok', 'too-many-per-ip']);
  });
  it('token bucket: burst, then one per 1/rate seconds', () => {
    let t = 0;
    const l = new IpLimits(100, 2, () => t);
    expect([l.admit('a'), l.admit('a'), l.admit('a')]).toEqual(['ok', 'ok', 'rate-limited']);
    t = 499;
    expect(l.admit('a')).toBe('rate-limited');
    t = 500;
    expect(l.admit('a')).toBe('ok');
  });
});
