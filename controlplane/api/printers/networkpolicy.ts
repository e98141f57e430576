// NetworkPolicy (printNetworkPolicy in pkg/printers/internalversion): NAME,
// POD-SELECTOR (the selector as labels.Selector prints it; empty for {}), AGE.

import { age, formatSelector, rec } from './format.ts'
import { ageCol, col, nameCol } from './types.ts'
import type { KindPrinter } from './types.ts'

export const networkPolicyPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Pod-Selector', 'Selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field.'),
    ageCol,
  ],
  cells(np, now) {
    return [np.metadata?.name ?? '', formatSelector(rec(np.spec).podSelector), age(np, now)]
  },
}
