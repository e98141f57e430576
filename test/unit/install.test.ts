// The systemd unit `--install` writes (pure), and the write itself into a folder.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { installUnit, quoteArg, renderUnit, withoutInstallFlags } from '../../cli/install.ts'

t.test('arguments are quoted and escaped as systemd parses ExecStart', async (t) => {
  t.equal(quoteArg('/usr/bin/node'), '/usr/bin/node')
  t.equal(quoteArg('--server=https://10.0.0.1:6443'), '--server=https://10.0.0.1:6443')
  t.equal(quoteArg('a b'), '"a b"')
  t.equal(quoteArg('say "hi"'), '"say \\"hi\\""')
  t.equal(quoteArg('100%'), '"100%%"', 'a percent sign is a specifier unless doubled')
  t.equal(quoteArg('$HOME'), '"$$HOME"', 'a dollar sign is expanded unless doubled')
})

t.test('the unit restarts on failure, starts at boot, and runs the command as given', async (t) => {
  const unit = renderUnit({ name: 'skiff-agent', description: 'Skiff agent', execStart: ['/usr/bin/node', '/opt/skiff/cli/skiff.ts', 'agent', '--token', 'K10ab::x.y', '--node-label', 'a b'], workingDirectory: '/var/lib/skiff', after: ['docker.service'], stopTimeoutS: 30 })
  t.match(unit, /^ExecStart=\/usr\/bin\/node \/opt\/skiff\/cli\/skiff\.ts agent --token K10ab::x\.y --node-label "a b"$/m)
  t.match(unit, /^Restart=on-failure$/m)
  t.match(unit, /^WantedBy=multi-user\.target$/m)
  t.match(unit, /^After=network-online\.target docker\.service$/m)
  t.match(unit, /^TimeoutStopSec=30$/m)
})

t.test('--install and --systemd-dir are not part of the installed command', async (t) => {
  t.same(withoutInstallFlags(['server', '--install', '--port', '6443', '--systemd-dir', '/tmp/x']), ['server', '--port', '6443'])
  t.same(withoutInstallFlags(['agent', '--systemd-dir=/tmp/x', '--install']), ['agent'])
})

t.test('a unit written to another folder is not enabled, and the message says how to start it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-units-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const msg = await installUnit({ name: 'skiff-server', description: 'd', execStart: ['/bin/node', 'skiff.ts', 'server'], workingDirectory: '/', after: [], stopTimeoutS: 10, systemdDir: dir })
  t.match(msg, /wrote .*skiff-server\.service; .*start it by hand: \/bin\/node skiff\.ts server/)
  t.match(readFileSync(join(dir, 'skiff-server.service'), 'utf8'), /^ExecStart=\/bin\/node skiff\.ts server$/m)
})
