// StatefulSets and ControllerRevisions (printStatefulSet,
// printControllerRevision in pkg/printers/internalversion).

import { age, containerCells, num, rec } from './format.ts'
import { ageCol, col, nameCol, templateCols } from './types.ts'
import type { KindPrinter } from './types.ts'

export const statefulSetPrinter: KindPrinter = {
  columns: [nameCol, col('Ready', 'Number of the pod with ready state'), ageCol, ...templateCols.slice(0, 2)],
  cells(sts, now) {
    const st = rec(sts.status)
    return [sts.metadata?.name ?? '', `${num(st.readyReplicas)}/${num(sts.spec?.replicas)}`, age(sts, now), ...containerCells(sts.spec?.template?.spec)]
  },
}

export const controllerRevisionPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Controller', 'Controller of the object'),
    col('Revision', 'Revision indicates the revision of the state represented by Data.', { type: 'integer' }),
    ageCol,
  ],
  cells(cr, now) {
    const ref = (cr.metadata?.ownerReferences ?? []).find((r) => r.controller)
    let controller = '<none>'
    if (ref) {
      const group = ref.apiVersion.includes('/') ? ref.apiVersion.split('/')[0] : ''
      controller = `${ref.kind.toLowerCase()}${group ? `.${group}` : ''}/${ref.name}`
    }
    return [cr.metadata?.name ?? '', controller, num((cr as any).revision), age(cr, now)]
  },
}
