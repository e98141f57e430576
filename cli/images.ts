// `skiff images build [--only name...] [--force]`: builds the local images
// (node/images) on the local Docker Engine. Progress goes to stderr, one line
// per step; the result, one line per image, to stdout.

import type { Command } from 'commander'
import { buildImages, imageNames } from '../node/images/build.ts'

export function registerImagesCommand(program: Command): void {
  const images = program.command('images').description('local images built without a registry (skiff/pause, skiff/echo, skiff/demo)')
  images
    .command('build')
    .description('build the local images that are missing or outdated')
    .option('--only <name...>', `only these images (${imageNames.join(', ')}, or their tags)`)
    .option('--force', 'rebuild even when an image is up to date, without the build cache')
    .action(async (o: { only?: string[]; force?: boolean }) => {
      const results = await buildImages({ only: o.only, force: o.force })
      const width = Math.max(...results.map((r) => r.tag.length))
      for (const r of results) {
        const id = r.id.replace(/^sha256:/, '').slice(0, 12)
        process.stdout.write(`${r.tag.padEnd(width)}  ${id}  ${r.built ? 'built' : 'up to date'}\n`)
      }
    })
}
