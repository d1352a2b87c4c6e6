/**
 * The network lab (issue #10): Linux network namespaces, veth pairs, bridges and iptables, every
 * name starting with `zrl-` and nothing else. Nothing leaves it: the "internet" is a namespace too.
 *
 *   zrl-inet   bridge zrl-wan 10.99.0.1/24          signaling servers, coturn ("the internet")
 *     |-- zrl-nata  wan 10.99.0.2  lan bridge zrl-lana 10.99.1.1/24   NAT A (home router)
 *     |     |-- zrl-owner  10.99.1.2                                  the owner's laptop
 *     |     '-- zrl-phone  wlan 10.99.1.3                             the phone on the home Wi-Fi
 *     '-- zrl-natb  wan 10.99.0.3  lan 10.99.2.1/24                   NAT B (mobile network)
 *           '-- zrl-phone  mobile 10.99.2.2                           the same phone on mobile data
 *
 * The phone has both interfaces; `phoneOn('wifi'|'mobile')` brings one up and routes through it.
 * Controls: NAT on/off per router (off = plain routing between the LANs), UDP blocked through a
 * router, random loss and a full partition at the phone. Set-up deletes leftovers of a killed run
 * first; teardown deletes every namespace (their veths and bridges go with them). Needs root, `ip`
 * and `iptables` (.ci/run installs them).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const PREFIX = 'zrl-';
export const NS = {
  inet: 'zrl-inet',
  nata: 'zrl-nata',
  natb: 'zrl-natb',
  owner: 'zrl-owner',
  phone: 'zrl-phone',
} as const;
export type Ns = (typeof NS)[keyof typeof NS];

export const ADDR = {
  inet: '10.99.0.1',
  nataWan: '10.99.0.2',
  natbWan: '10.99.0.3',
  nataLan: '10.99.1.1',
  owner: '10.99.1.2',
  phoneWifi: '10.99.1.3',
  natbLan: '10.99.2.1',
  phoneMobile: '10.99.2.2',
} as const;

function run(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip netns exec NS cmd args...` */
export function inNs(ns: Ns, cmd: string, ...args: string[]): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

function ip(...args: string[]): void {
  run('ip', args);
}

function ipt(ns: Ns, ...args: string[]): void {
  inNs(ns, 'iptables', '-w', ...args);
}

/** Our namespaces left over from an earlier run (only names with our prefix). */
function leftovers(): string[] {
  return run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(PREFIX));
}

export interface Lab {
  /** Bring the phone's Wi-Fi (home LAN, same as the owner) or its mobile interface (behind NAT B) up. */
  phoneOn(net: 'wifi' | 'mobile'): void;
  /** Masquerade (a NAT) or plain routing through router A or B. */
  setNat(router: 'a' | 'b', on: boolean): void;
  /** Drop UDP forwarded through router A or B (TURN over TCP still works). */
  blockUdp(router: 'a' | 'b', on: boolean): void;
  /** Drop `probability` of the phone's packets, both ways (0 = no loss). */
  setPhoneLoss(probability: number): void;
  /** Cut the phone off completely (both ways), or heal. */
  partitionPhone(on: boolean): void;
  /** A script that runs Chromium inside `ns` (for playwright's executablePath). */
  chromiumIn(ns: Ns): string;
  /** Start a process inside `ns`; the lab stops it at teardown if the test has not. */
  spawnIn(ns: Ns, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess;
  teardown(): Promise<void>;
}

/** Creates the lab (deleting leftovers first). Throws a clear error when it cannot. */
export function createLab(): Lab {
  try {
    if (process.getuid?.() !== 0) throw new Error('the lab needs root (CI runs .ci/run as root)');
    run('ip', ['-V']);
    run('iptables', ['--version']);
    for (const ns of leftovers()) ip('netns', 'del', ns);
    for (const ns of Object.values(NS)) ip('netns', 'add', ns);
    for (const ns of Object.values(NS)) inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    // The internet: one bridge; the routers' WAN sides hang off it.
    inNs(NS.inet, 'ip', 'link', 'add', 'zrl-wan', 'type', 'bridge');
    inNs(NS.inet, 'ip', 'addr', 'add', `${ADDR.inet}/24`, 'dev', 'zrl-wan');
    inNs(NS.inet, 'ip', 'link', 'set', 'zrl-wan', 'up');
    const veth = (a: string, nsA: Ns, b: string, nsB: Ns): void =>
      ip('link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB);
    const up = (ns: Ns, dev: string, cidr?: string): void => {
      if (cidr !== undefined) inNs(ns, 'ip', 'addr', 'add', cidr, 'dev', dev);
      inNs(ns, 'ip', 'link', 'set', dev, 'up');
    };
    const bridgePort = (ns: Ns, dev: string, bridge: string): void => {
      inNs(ns, 'ip', 'link', 'set', dev, 'master', bridge);
      inNs(ns, 'ip', 'link', 'set', dev, 'up');
    };
    for (const [router, wan, lan, port] of [
      [NS.nata, ADDR.nataWan, ADDR.nataLan, 'zrl-aw'],
      [NS.natb, ADDR.natbWan, ADDR.natbLan, 'zrl-bw'],
    ] as const) {
      veth(`${port}0`, NS.inet, `${port}1`, router);
      bridgePort(NS.inet, `${port}0`, 'zrl-wan');
      up(router, `${port}1`, `${wan}/24`);
      inNs(router, 'ip', 'route', 'add', 'default', 'via', ADDR.inet);
      inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
      void lan;
    }
    // Router A's LAN is a bridge (a home Wi-Fi): the owner and the phone's Wi-Fi are on it.
    inNs(NS.nata, 'ip', 'link', 'add', 'zrl-lana', 'type', 'bridge');
    up(NS.nata, 'zrl-lana', `${ADDR.nataLan}/24`);
    veth('zrl-ol0', NS.nata, 'zrl-ol1', NS.owner);
    bridgePort(NS.nata, 'zrl-ol0', 'zrl-lana');
    up(NS.owner, 'zrl-ol1', `${ADDR.owner}/24`);
    inNs(NS.owner, 'ip', 'route', 'add', 'default', 'via', ADDR.nataLan);
    veth('zrl-pw0', NS.nata, 'zrl-pw1', NS.phone);
    bridgePort(NS.nata, 'zrl-pw0', 'zrl-lana');
    inNs(NS.phone, 'ip', 'addr', 'add', `${ADDR.phoneWifi}/24`, 'dev', 'zrl-pw1');
    // Router B's LAN: a point-to-point link to the phone's mobile interface.
    veth('zrl-pm0', NS.natb, 'zrl-pm1', NS.phone);
    up(NS.natb, 'zrl-pm0', `${ADDR.natbLan}/24`);
    inNs(NS.phone, 'ip', 'addr', 'add', `${ADDR.phoneMobile}/24`, 'dev', 'zrl-pm1');
    // The internet routes to both LANs (used when a router's NAT is off: plain routing).
    inNs(NS.inet, 'ip', 'route', 'add', '10.99.1.0/24', 'via', ADDR.nataWan);
    inNs(NS.inet, 'ip', 'route', 'add', '10.99.2.0/24', 'via', ADDR.natbWan);
    inNs(NS.inet, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  } catch (e) {
    const detail = e instanceof Error ? e.message.split('\n').slice(0, 3).join(' ') : String(e);
    for (const ns of safeLeftovers()) safe(() => ip('netns', 'del', ns));
    throw new Error(`network lab could not be created (needs root, iproute2 and iptables; .ci/run installs them): ${detail}`, { cause: e });
  }

  const children = new Set<ChildProcess>();
  const scriptDir = mkdtempSync(path.join(tmpdir(), 'zrl-scripts-'));
  const lab: Lab = {
    phoneOn(net) {
      const [on, off, gw] = net === 'wifi' ? ['zrl-pw1', 'zrl-pm1', ADDR.nataLan] : ['zrl-pm1', 'zrl-pw1', ADDR.natbLan];
      inNs(NS.phone, 'ip', 'link', 'set', off, 'down');
      inNs(NS.phone, 'ip', 'link', 'set', on, 'up');
      safe(() => inNs(NS.phone, 'ip', 'route', 'del', 'default'));
      inNs(NS.phone, 'ip', 'route', 'add', 'default', 'via', gw);
    },
    setNat(router, on) {
      const ns = router === 'a' ? NS.nata : NS.natb;
      const wan = router === 'a' ? 'zrl-aw1' : 'zrl-bw1';
      safe(() => ipt(ns, '-t', 'nat', '-D', 'POSTROUTING', '-o', wan, '-j', 'MASQUERADE'));
      if (on) ipt(ns, '-t', 'nat', '-A', 'POSTROUTING', '-o', wan, '-j', 'MASQUERADE');
    },
    blockUdp(router, on) {
      const ns = router === 'a' ? NS.nata : NS.natb;
      safe(() => ipt(ns, '-D', 'FORWARD', '-p', 'udp', '-j', 'DROP'));
      if (on) ipt(ns, '-I', 'FORWARD', '-p', 'udp', '-j', 'DROP');
    },
    setPhoneLoss(probability) {
      for (const [chain, iface] of [
        ['INPUT', '-i'],
        ['OUTPUT', '-o'],
      ] as const) {
        ipt(NS.phone, '-F', chain);
        if (probability > 0)
          ipt(
            NS.phone,
            '-A',
            chain,
            '!',
            iface,
            'lo',
            '-m',
            'statistic',
            '--mode',
            'random',
            '--probability',
            String(probability),
            '-j',
            'DROP',
          );
      }
    },
    partitionPhone(on) {
      for (const chain of ['INPUT', 'OUTPUT']) {
        const iface = chain === 'INPUT' ? '-i' : '-o';
        safe(() => ipt(NS.phone, '-D', chain, '!', iface, 'lo', '-j', 'DROP'));
        if (on) ipt(NS.phone, '-I', chain, '!', iface, 'lo', '-j', 'DROP');
      }
    },
    chromiumIn(ns) {
      const file = path.join(scriptDir, `chromium-${ns}.sh`);
      writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${ns} /usr/bin/chromium "$@"\n`);
      chmodSync(file, 0o755);
      return file;
    },
    spawnIn(ns, cmd, args, env) {
      const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    async teardown() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await Promise.all(
        [...children].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)))),
      );
      for (const ns of safeLeftovers()) safe(() => ip('netns', 'del', ns));
      rmSync(scriptDir, { recursive: true, force: true });
    },
  };
  lab.setNat('a', true);
  lab.setNat('b', true);
  lab.phoneOn('wifi');
  return lab;
}

function safe(f: () => unknown): void {
  try {
    f();
  } catch {
    // absent rule / route / namespace: nothing to undo
  }
}

function safeLeftovers(): string[] {
  try {
    return leftovers();
  } catch {
    return [];
  }
}
