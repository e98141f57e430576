// Query parameters read the way the apiserver's parameter codec reads them
// (apimachinery's conversion of url.Values into ListOptions, DeleteOptions,
// PatchOptions ...): the first value of a repeated parameter counts; a
// boolean is false when absent, `0` or `false` in any case, and true for
// anything else (`1`, `t`, `T`, `true`, `True`, `TRUE`, and also an empty
// value, `yes`, `f` ...: Convert_Slice_string_To_bool); an integer is
// strconv.ParseInt, and a value that does not parse is a 400 BadRequest
// naming the parameter; a parameter it does not know is ignored.

import { ApiError } from '../api/errors.ts'

/** The first value of a parameter (url.Values conversion reads [0]), or undefined when absent. */
export function stringParam(query: URLSearchParams, name: string): string | undefined {
  return query.get(name) ?? undefined
}

/** Convert_Slice_string_To_bool: absent, "0" and "false" (any case) are false, every other value true. */
export function boolParam(query: URLSearchParams, name: string): boolean {
  const v = query.get(name)
  if (v === null) return false
  return !(v === '0' || v.toLowerCase() === 'false')
}

/** Convert_Slice_string_To_int64: absent is undefined; anything but a base-10 integer is a 400. */
export function intParam(query: URLSearchParams, name: string): number | undefined {
  const v = query.get(name)
  if (v === null) return undefined
  if (!/^[+-]?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new ApiError('BadRequest', `invalid value for query parameter "${name}": strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`)
  }
  return Number(v)
}
