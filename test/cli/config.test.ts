import { describe, expect, it } from 'vitest';
import { UsageError, envName, formatFlagHelp, parseFlags } from '../../signaling/cli-args.ts';
import { DEFAULT_ICE_SERVER, SERVE_FLAGS, parseServeConfig } from '../../signaling/config.ts';

const usage =
  (argv: string[], env: NodeJS.ProcessEnv = {}) =>
  () =>
    parseServeConfig(argv, env);

describe('serve options', () => {
  it('has the documented defaults', () => {
    const c = parseServeConfig([], {});
    expect(c.host).toBe('127.0.0.1');
    expect(c.port).toBe(8765);
    expect(c.keyFiles).toEqual(['./.zeroroom/server.key']);
    expect(c.tls).toBeUndefined();
    expect(c.webRoot).toBeUndefined();
    expect(c.limits).toEqual({});
    expect(c.iceServerUrls).toEqual([DEFAULT_ICE_SERVER]);
    expect(c.turn).toBeUndefined();
    expect(c.quiet).toBe(false);
    expect(c.trustedProxies).toEqual([]);
  });

  it('takes trusted proxy addresses as IP literals only', () => {
    expect(parseServeConfig(['--trust-proxy', '127.0.0.1', '--trust-proxy', '::1'], {}).trustedProxies).toEqual(['127.0.0.1', '::1']);
    expect(parseServeConfig([], { ZEROROOM_TRUST_PROXY: '10.0.0.2,10.0.0.3' }).trustedProxies).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(usage(['--trust-proxy', 'proxy.example'])).toThrow(/--trust-proxy: "proxy.example" is not an IP address/);
  });

  it('reads every limit from flags and from ZEROROOM_* variables, flags winning', () => {
    const env = {
      ZEROROOM_MAX_PAYLOAD: '2097152',
      ZEROROOM_MAX_CONNECTIONS: '10',
      ZEROROOM_MAX_CONNECTIONS_PER_IP: '3',
      ZEROROOM_CONNECTIONS_PER_SECOND_PER_IP: '4',
      ZEROROOM_HANDSHAKE_TIMEOUT_MS: '5000',
      ZEROROOM_PORT: '9000',
    };
    const c = parseServeConfig(['--max-connections', '20', '--port=0'], env);
    expect(c.limits).toEqual({
      maxPayload: 2097152,
      maxConnections: 20,
      maxConnectionsPerIp: 3,
      newConnectionsPerSecondPerIp: 4,
      handshakeTimeoutMs: 5000,
    });
    expect(c.port).toBe(0);
  });

  it('takes repeatable flags and comma-separated variables', () => {
    expect(parseServeConfig(['--ice-server', 'stun:a.example:3478', '--ice-server', 'stun:b.example'], {}).iceServerUrls).toEqual([
      'stun:a.example:3478',
      'stun:b.example',
    ]);
    expect(parseServeConfig([], { ZEROROOM_ICE_SERVER: 'stun:a.example, stun:b.example' }).iceServerUrls).toEqual([
      'stun:a.example',
      'stun:b.example',
    ]);
    expect(parseServeConfig(['--ice-server', 'none'], {}).iceServerUrls).toEqual([]);
    expect(parseServeConfig(['--key-file', 'new.key', '--key-file', 'old.key'], {}).keyFiles).toEqual(['new.key', 'old.key']);
  });

  it('builds the TURN settings only from a secret plus at least one URL', () => {
    const c = parseServeConfig(['--turn-url', 'turn:turn.example:3478', '--turn-ttl', '600'], {
      ZEROROOM_TURN_SECRET: 'a-long-enough-secret',
    });
    expect(c.turn).toEqual({ urls: ['turn:turn.example:3478'], secret: { value: 'a-long-enough-secret' }, ttlSeconds: 600 });
    expect(parseServeConfig(['--turn-url', 'turns:t.example', '--turn-secret-file', '/s'], {}).turn?.secret).toEqual({ file: '/s' });
    expect(usage(['--turn-url', 'turn:t.example'])).toThrow(/needs --turn-secret/);
    expect(usage(['--turn-secret', 'a-long-enough-secret'])).toThrow(/needs at least one --turn-url/);
    expect(usage(['--turn-url', 'turn:t.example', '--turn-secret', 'short'])).toThrow(/at least 16/);
    expect(usage(['--turn-url', 'turn:t.example', '--turn-secret', 'a-long-enough-secret', '--turn-secret-file', '/s'])).toThrow(
      /not both/,
    );
    expect(usage(['--turn-url', 'stun:t.example', '--turn-secret', 'a-long-enough-secret'])).toThrow(/must start with turn: or turns:/);
    expect(usage(['--turn-url', 'turn:t.example', '--turn-secret', 'a-long-enough-secret', '--turn-ttl', '10'])).toThrow(/at least 60/);
  });

  it('refuses each malformed value with a usage error naming the option', () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--port', 'abc'], {}, /--port: expected a non-negative integer/],
      [['--port', '70000'], {}, /--port: must be at most 65535/],
      [['--port', '-1'], {}, /--port: expected a non-negative integer/],
      [['--port'], {}, /--port needs a value/],
      [['--max-payload', '1.5'], {}, /--max-payload: expected a non-negative integer/],
      [['--max-payload', '99999999999999999999'], {}, /too large/],
      [[], { ZEROROOM_MAX_PAYLOAD: 'lots' }, /ZEROROOM_MAX_PAYLOAD: expected a non-negative integer/],
      [['--nope'], {}, /unknown option --nope/],
      [['serve'], {}, /unexpected argument "serve"/],
      [['--host', 'a b'], {}, /--host: "a b" is not a host name/],
      [['--host', 'x', '--host', 'y'], {}, /--host given twice/],
      [['--tls-cert', 'c.pem'], {}, /--tls-cert and --tls-key go together/],
      [['--ice-server', 'http://x'], {}, /--ice-server: "http:\/\/x" must start with stun:/],
      [['--ice-server', 'stun:x;y'], {}, /characters not allowed/],
      [['--app-url', 'javascript:alert(1)'], {}, /--app-url: .* must start with http: or https:/],
      [['--signaling-url', 'http://x'], {}, /--signaling-url: .* must start with ws: or wss:/],
      [['--connect-origin', 'wss://x.example/path'], {}, /must be an origin/],
      [['--connect-origin', "wss://x.example 'unsafe-inline'"], {}, /not a URL|characters not allowed/],
      [['--quiet=maybe'], {}, /--quiet: expected true or false/],
    ];
    for (const [argv, env, message] of cases) {
      let caught: unknown;
      try {
        parseServeConfig(argv, env);
      } catch (e) {
        caught = e;
      }
      expect(caught, argv.join(' ')).toBeInstanceOf(UsageError);
      expect((caught as Error).message, argv.join(' ')).toMatch(message);
    }
  });

  it('names the variable of every flag in --help', () => {
    const help = formatFlagHelp(SERVE_FLAGS);
    for (const f of SERVE_FLAGS) expect(help).toContain(envName(f.name));
    expect(envName('connections-per-second-per-ip')).toBe('ZEROROOM_CONNECTIONS_PER_SECOND_PER_IP');
  });

  it('does not confuse a list flag from the environment with a later flag', () => {
    const flags = parseFlags(
      ['--b', 'x'],
      [
        { name: 'a', kind: 'list', help: '' },
        { name: 'b', kind: 'string', help: '' },
      ],
      { ZEROROOM_A: 'p,q' },
    );
    expect(flags.get('a')).toEqual(['p', 'q']);
    expect(flags.get('b')).toBe('x');
  });
});
