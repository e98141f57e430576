// gateway.networking.k8s.io columns: the additionalPrinterColumns of the
// Gateway API CRDs (standard channel), as the apiextensions table convertor
// prints them: a JSONPath with no value is a null cell, an array value
// (HTTPRoute hostnames) prints as JSON, and of `[*]` only the first value
// is taken (Gateway ADDRESS).

import type { KubeObject } from '../types.ts'
import { age, arr } from './format.ts'
import { ageCol, col, nameCol } from './types.ts'
import type { KindPrinter } from './types.ts'

/** A CRD column without a description gets this one from the table convertor. */
const jp = (name: string, path: string, priority = 0) => col(name, `Custom resource definition column (in JSONPath format): ${path}`, { priority })

function conditionStatus(obj: KubeObject, type: string): string | null {
  const c = arr(obj.status?.conditions).find((x: any) => x?.type === type)
  return typeof c?.status === 'string' ? c.status : null
}

export const gatewayClassPrinter: KindPrinter = {
  columns: [nameCol, jp('Controller', '.spec.controllerName'), jp('Accepted', '.status.conditions[?(@.type=="Accepted")].status'), ageCol, jp('Description', '.spec.description', 1)],
  cells: (gc, now) => [gc.metadata?.name ?? '', gc.spec?.controllerName ?? null, conditionStatus(gc, 'Accepted'), age(gc, now), gc.spec?.description ?? null],
}

export const gatewayPrinter: KindPrinter = {
  columns: [nameCol, jp('Class', '.spec.gatewayClassName'), jp('Address', '.status.addresses[*].value'), jp('Programmed', '.status.conditions[?(@.type=="Programmed")].status'), ageCol],
  cells(gw, now) {
    const first = arr(gw.status?.addresses)[0]
    return [gw.metadata?.name ?? '', gw.spec?.gatewayClassName ?? null, typeof first?.value === 'string' ? first.value : null, conditionStatus(gw, 'Programmed'), age(gw, now)]
  },
}

export const httpRoutePrinter: KindPrinter = {
  columns: [nameCol, jp('Hostnames', '.spec.hostnames'), ageCol],
  cells(rt, now) {
    const h = rt.spec?.hostnames
    return [rt.metadata?.name ?? '', Array.isArray(h) && h.length ? JSON.stringify(h) : null, age(rt, now)]
  },
}
