import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DENIED_PATHS,
  DEFAULT_HOST_POLICY,
  DEFAULT_PRIVILEGED_GROUPS,
  parseHostPolicy,
} from '../../src/policy/index.js';

const WHERE = 'deployer.json: policy';

describe('parseHostPolicy', () => {
  it('gives the defaults for no policy', () => {
    expect(parseHostPolicy(undefined, WHERE)).toEqual({ ok: true, policy: DEFAULT_HOST_POLICY });
    expect(DEFAULT_HOST_POLICY).toEqual({
      privilegedGroups: DEFAULT_PRIVILEGED_GROUPS,
      deniedPaths: DEFAULT_DENIED_PATHS,
      allowedPaths: [],
      allowedUnits: [],
      envFileGrants: {},
      credentialGrants: {},
      wildcardDomains: false,
    });
    expect(Object.isFrozen(DEFAULT_HOST_POLICY.privilegedGroups)).toBe(true);
  });

  it('documents a closed list of privileged groups', () => {
    expect(DEFAULT_PRIVILEGED_GROUPS).toEqual([
      'root',
      'wheel',
      'sudo',
      'admin',
      'adm',
      'shadow',
      'disk',
      'kmem',
      'tty',
      'input',
      'video',
      'docker',
      'lxd',
      'libvirt',
      'kvm',
      'systemd-journal',
      'systemd-network',
    ]);
  });

  it('applies every key', () => {
    const r = parseHostPolicy(
      {
        denyGroups: ['render'],
        allowGroups: ['video', 'kvm'],
        users: ['pil-web', 'pil-worker'],
        groups: ['pil'],
        denyPaths: ['/srv/backups'],
        allowPaths: ['/etc/myapp'],
        allowUnits: ['postgresql.service'],
        envFileGrants: { '/var/lib/biz-secrets/shared.env': ['web', 'api'] },
        credentialGrants: { '/var/lib/biz-secrets/shared/db': ['web', 'worker'] },
        wildcardDomains: true,
        domains: ['Example.com', '*.shop.example'],
        ports: { min: 8000, max: 8999 },
      },
      WHERE,
    );
    expect(r).toEqual({
      ok: true,
      policy: {
        privilegedGroups: [
          ...DEFAULT_PRIVILEGED_GROUPS.filter((g) => g !== 'video' && g !== 'kvm'),
          'render',
        ],
        users: ['pil-web', 'pil-worker'],
        groups: ['pil'],
        deniedPaths: [...DEFAULT_DENIED_PATHS, '/srv/backups'],
        allowedPaths: ['/etc/myapp'],
        allowedUnits: ['postgresql.service'],
        envFileGrants: { '/var/lib/biz-secrets/shared.env': ['web', 'api'] },
        credentialGrants: { '/var/lib/biz-secrets/shared/db': ['web', 'worker'] },
        wildcardDomains: true,
        domains: ['example.com', '*.shop.example'],
        ports: { min: 8000, max: 8999 },
      },
    });
  });

  it.each([
    ['not an object', [], [[WHERE, 'expected an object of policy settings, found an array of 0']]],
    [
      'an unknown key (a typo)',
      { allowUnit: ['x.service'] },
      [[`${WHERE}.allowUnit`, expect.stringMatching(/^unknown key "allowUnit"; allowed keys: denyGroups, /)]],
    ],
    ['a group name with a space', { denyGroups: ['a b'] }, [[`${WHERE}.denyGroups[0]`, expect.any(String)]]],
    [
      'allowing root',
      { allowGroups: ['root'] },
      [[`${WHERE}.allowGroups[0]`, 'gid 0 (root) can never be allowed']],
    ],
    [
      'allowing a group that is not privileged (a typo)',
      { allowGroups: ['vidoe'] },
      [[`${WHERE}.allowGroups[0]`, expect.stringContaining('"vidoe" is not a privileged group')]],
    ],
    [
      'allowing and denying one group',
      { denyGroups: ['video'], allowGroups: ['video'] },
      [[`${WHERE}.allowGroups[0]`, '"video" is also in denyGroups']],
    ],
    [
      'root in the users allowlist',
      { users: ['pil', 'root'] },
      [[`${WHERE}.users[1]`, 'no service runs as root; remove it from the list']],
    ],
    [
      'a privileged group in the groups allowlist',
      { groups: ['docker'] },
      [[`${WHERE}.groups[0]`, '"docker" is a privileged group; list it in allowGroups to allow it']],
    ],
    [
      'a relative path',
      { denyPaths: ['srv'] },
      [[`${WHERE}.denyPaths[0]`, expect.stringContaining('absolute')]],
    ],
    ['a path with ..', { allowPaths: ['/etc/../root'] }, [[`${WHERE}.allowPaths[0]`, expect.any(String)]]],
    [
      'a path both allowed and denied',
      { denyPaths: ['/srv'], allowPaths: ['/srv'] },
      [[`${WHERE}.allowPaths[0]`, '"/srv" is also in denyPaths']],
    ],
    [
      'a unit without a type',
      { allowUnits: ['postgresql'] },
      [[`${WHERE}.allowUnits[0]`, expect.any(String)]],
    ],
    [
      'a grant to nobody',
      { envFileGrants: { '/var/lib/biz-secrets/x.env': [] } },
      [[`${WHERE}.envFileGrants["/var/lib/biz-secrets/x.env"]`, expect.stringContaining('at least one')]],
    ],
    [
      'a credential grant to nobody',
      { credentialGrants: { '/var/lib/biz-secrets/shared/db': [] } },
      [
        [
          `${WHERE}.credentialGrants["/var/lib/biz-secrets/shared/db"]`,
          expect.stringContaining('at least one'),
        ],
      ],
    ],
    [
      'a credential grant that is a list',
      { credentialGrants: ['/var/lib/biz-secrets/shared/db'] },
      [
        [
          `${WHERE}.credentialGrants`,
          expect.stringContaining('credential file path → list of service names'),
        ],
      ],
    ],
    [
      'a grant of a relative file',
      { envFileGrants: { 'x.env': ['web'] } },
      [[`${WHERE}.envFileGrants["x.env"]`, expect.stringContaining('absolute')]],
    ],
    [
      'a grant to a bad service name',
      { envFileGrants: { '/s/x.env': ['Web'] } },
      [[`${WHERE}.envFileGrants["/s/x.env"][0]`, expect.stringContaining('service name')]],
    ],
    [
      'wildcardDomains as a string',
      { wildcardDomains: 'yes' },
      [[`${WHERE}.wildcardDomains`, expect.any(String)]],
    ],
    ['a domain with a scheme', { domains: ['https://x.com'] }, [[`${WHERE}.domains[0]`, expect.any(String)]]],
    [
      'ports out of bounds',
      { ports: { min: 80, max: 70000 } },
      [
        [`${WHERE}.ports.min`, 'expected an integer port from 1024 to 65535, found 80'],
        [`${WHERE}.ports.max`, 'expected an integer port from 1024 to 65535, found 70000'],
      ],
    ],
    [
      'ports reversed',
      { ports: { min: 9000, max: 8000 } },
      [[`${WHERE}.ports`, 'expected min <= max, found min 9000 and max 8000']],
    ],
    [
      'ports with an unknown key',
      { ports: { min: 8000, max: 9000, step: 1 } },
      [[`${WHERE}.ports.step`, expect.any(String)]],
    ],
    [
      'several problems at once',
      { users: ['root'], groups: ['disk'], allowGroups: ['root'] },
      [
        [`${WHERE}.allowGroups[0]`, expect.any(String)],
        [`${WHERE}.users[0]`, expect.any(String)],
        [`${WHERE}.groups[0]`, expect.any(String)],
      ],
    ],
  ])('refuses %s, naming the key', (_, raw, expected) => {
    const r = parseHostPolicy(raw, WHERE);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => [i.path, i.message])).toEqual(expected);
  });
});
