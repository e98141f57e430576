// PodDisruptionBudget (printPodDisruptionBudget in pkg/printers/internalversion).

import { age, num, rec } from './format.ts'
import { ageCol, col, nameCol } from './types.ts'
import type { KindPrinter } from './types.ts'

/** An IntOrString as Go prints it, or N/A when unset. */
function intOrPercent(v: unknown): string {
  return v === undefined || v === null ? 'N/A' : String(v)
}

export const podDisruptionBudgetPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Min Available', 'The minimum number of pods that must be available.'),
    col('Max Unavailable', 'The maximum number of pods that may be unavailable.'),
    col('Allowed Disruptions', 'Calculated number of pods that may be disrupted at this time.', { type: 'integer' }),
    ageCol,
  ],
  cells(pdb, now) {
    const spec = rec(pdb.spec)
    return [pdb.metadata?.name ?? '', intOrPercent(spec.minAvailable), intOrPercent(spec.maxUnavailable), num(rec(pdb.status).disruptionsAllowed), age(pdb, now)]
  },
}
