// `skiff server --install` / `skiff agent ... --install`: a systemd unit for
// the command as given (minus --install), restarted on failure and started
// at boot, then `systemctl enable --now`. Where systemd is not running (a
// container, these build machines) the unit is written and the message says
// how to start it by hand. The unit text is pure (renderUnit).

import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const exec = promisify(execFile)

export interface UnitOptions {
  /** skiff-server or skiff-agent. */
  name: string
  description: string
  /** argv of the service, absolute program path first. */
  execStart: string[]
  workingDirectory: string
  /** Units to start after (and want). */
  after: string[]
  /** Seconds systemd waits after SIGTERM (the agent drains its ingress). */
  stopTimeoutS: number
}

/** One argument as systemd's ExecStart parses it: quoted when needed; % and $ escaped (systemd.service(5)). */
export function quoteArg(a: string): string {
  const escaped = a.replaceAll('%', '%%').replaceAll('$', '$$$$')
  if (/^[A-Za-z0-9_./:=,@+-]+$/.test(escaped)) return escaped
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}

export function renderUnit(o: UnitOptions): string {
  return [
    '[Unit]',
    `Description=${o.description}`,
    'Documentation=https://skiff.dev (README: Adding a machine)',
    `After=network-online.target ${o.after.join(' ')}`.trim(),
    `Wants=network-online.target ${o.after.join(' ')}`.trim(),
    '',
    '[Service]',
    'Type=simple',
    `WorkingDirectory=${quoteArg(o.workingDirectory)}`,
    `ExecStart=${o.execStart.map(quoteArg).join(' ')}`,
    'Restart=on-failure',
    'RestartSec=2',
    // SIGTERM to skiff itself (it stops its ingress workers in order), SIGKILL to what is left after the timeout.
    'KillMode=mixed',
    `TimeoutStopSec=${o.stopTimeoutS}`,
    'LimitNOFILE=1048576',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
}

/** The command line without --install, --systemd-dir and --state-dir (and their values): the unit passes an absolute --state-dir itself. */
export function withoutInstallFlags(argv: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--install') continue
    if (a === '--systemd-dir' || a === '--state-dir') { i++; continue }
    if (a.startsWith('--systemd-dir=') || a.startsWith('--state-dir=')) continue
    out.push(a)
  }
  return out
}

export async function installUnit(o: UnitOptions & { systemdDir: string }): Promise<string> {
  mkdirSync(o.systemdDir, { recursive: true })
  const path = join(o.systemdDir, `${o.name}.service`)
  writeFileSync(path, renderUnit(o), { mode: 0o644 })
  if (!existsSync('/run/systemd/system') || o.systemdDir !== '/etc/systemd/system') {
    return `wrote ${path}; systemd is not managing this machine (or another folder was asked for), so start it by hand: ${o.execStart.map(quoteArg).join(' ')}`
  }
  try {
    await exec('systemctl', ['daemon-reload'])
    await exec('systemctl', ['enable', '--now', `${o.name}.service`])
  } catch (e) {
    throw new Error(`SKIFF_ERR_CLI_INSTALL: wrote ${path} but systemctl failed: ${(e as { stderr?: string }).stderr ?? (e as Error).message}; see journalctl -u ${o.name}`)
  }
  return `installed and started ${o.name}.service (restarts on failure, starts at boot); logs: journalctl -u ${o.name} -f`
}
