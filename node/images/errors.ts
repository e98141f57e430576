// Errors of the local image builder. Each names what is missing and what to
// run, and carries a stable code (SKIFF_ERR_IMAGES_<WHAT>) for logs and the CLI.

import { CodedError } from '../../lib/errors.ts'

export const imageErrorCodes = {
  BusyboxMissing: 'SKIFF_ERR_IMAGES_BUSYBOX_MISSING',
  NodeMissing: 'SKIFF_ERR_IMAGES_NODE_MISSING',
  HostTool: 'SKIFF_ERR_IMAGES_HOST_TOOL',
  DockerUnavailable: 'SKIFF_ERR_IMAGES_DOCKER_UNAVAILABLE',
  BuildFailed: 'SKIFF_ERR_IMAGES_BUILD_FAILED',
  UnknownImage: 'SKIFF_ERR_IMAGES_UNKNOWN_IMAGE',
  LockTimeout: 'SKIFF_ERR_IMAGES_LOCK_TIMEOUT',
} as const

export type ImageErrorReason = keyof typeof imageErrorCodes

export class ImageBuildError extends CodedError<ImageErrorReason> {
  constructor(reason: ImageErrorReason, message: string, options?: { cause?: unknown }) {
    super({ name: 'ImageBuildError', codes: imageErrorCodes, reason, message, prefix: false, cause: options?.cause })
  }
}
