// Constructors for plugin Status values (framework.ts), so plugins read as
// `return unschedulable(reasonInsufficient('cpu'))`.

import type { Status } from './framework.ts'

/** The highest score a ScorePlugin may give a node (kube-scheduler's MaxNodeScore). */
export const maxNodeScore = 100

export const success: Status = Object.freeze({ code: 'Success' }) as Status

export function unschedulable(...reasons: string[]): Status {
  return { code: 'Unschedulable', reasons }
}

export function isSuccess(s: Status | undefined): boolean {
  return s === undefined || s.code === 'Success'
}
