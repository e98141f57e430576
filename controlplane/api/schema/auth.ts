// rbac.authorization.k8s.io/v1, authentication.k8s.io/v1 and
// authorization.k8s.io/v1. Field numbers follow k8s.io/api generated.proto.

import { atomic, req } from './common.ts'
import { definePackage, listOf, object, type } from './dsl.ts'

const meta = [1, 'meta.ObjectMeta', 'Standard object metadata.'] as const

export const rbac = definePackage('rbac', 'io.k8s.api.rbac.v1', {
  Role: object('Namespaced permissions: a set of rules.', {
    metadata: meta,
    rules: [2, '[]PolicyRule', 'What the role allows.', atomic],
  }),
  RoleList: listOf('Role'),
  ClusterRole: object('Cluster-wide permissions: a set of rules, possibly aggregated from other roles.', {
    metadata: meta,
    rules: [2, '[]PolicyRule', 'What the role allows.', atomic],
    aggregationRule: [3, '*AggregationRule', 'Build the rules from the ClusterRoles these selectors match.'],
  }),
  ClusterRoleList: listOf('ClusterRole'),
  PolicyRule: type('Verbs allowed on resources or non-resource URLs.', {
    verbs: [1, '[]string', 'Verbs (get, list, watch, create, update, patch, delete, ...); * for all.', { required: true, listType: 'atomic' }],
    apiGroups: [2, '[]string', 'API groups; "" is the core group, * all.', atomic],
    resources: [3, '[]string', 'Resources (pods, deployments/scale, ...); * for all.', atomic],
    resourceNames: [4, '[]string', 'Object names the rule is limited to.', atomic],
    nonResourceURLs: [5, '[]string', 'URL paths (/healthz, /api/*) for cluster roles.', atomic],
  }),
  AggregationRule: type('How a ClusterRole collects rules from others.', {
    clusterRoleSelectors: [1, '[]meta.LabelSelector', 'ClusterRoles whose rules are added.', atomic],
  }),
  RoleBinding: object('Grants a Role or ClusterRole to subjects within a namespace.', {
    metadata: meta,
    subjects: [2, '[]Subject', 'Who gets the role.', atomic],
    roleRef: [3, 'RoleRef', 'The role granted; cannot change.', req],
  }),
  RoleBindingList: listOf('RoleBinding'),
  ClusterRoleBinding: object('Grants a ClusterRole to subjects cluster-wide.', {
    metadata: meta,
    subjects: [2, '[]Subject', 'Who gets the role.', atomic],
    roleRef: [3, 'RoleRef', 'The ClusterRole granted; cannot change.', req],
  }),
  ClusterRoleBindingList: listOf('ClusterRoleBinding'),
  Subject: type('A user, group or service account.', {
    kind: [1, 'string', 'User, Group or ServiceAccount.', req],
    apiGroup: [2, 'string', 'rbac.authorization.k8s.io for users and groups, "" for service accounts.'],
    name: [3, 'string', 'Name.', req],
    namespace: [4, 'string', 'Namespace of a service account.'],
  }, { structType: 'atomic' }),
  RoleRef: type('The role a binding grants.', {
    apiGroup: [1, 'string', 'rbac.authorization.k8s.io.', req],
    kind: [2, 'string', 'Role or ClusterRole.', req],
    name: [3, 'string', 'Role name.', req],
  }, { structType: 'atomic' }),
})

export const authentication = definePackage('authentication', 'io.k8s.api.authentication.v1', {
  TokenRequest: object('Asks for a token of a service account (the token subresource).', {
    metadata: meta,
    spec: [2, 'TokenRequestSpec', 'What the token is for.', req],
    status: [3, 'TokenRequestStatus', 'The issued token.'],
  }),
  TokenRequestSpec: type('What a token is for.', {
    audiences: [1, '[]string', 'Intended audiences; the apiserver by default.', { required: true, listType: 'atomic' }],
    expirationSeconds: [4, '*int64', 'Requested lifetime.'],
    boundObjectRef: [3, '*BoundObjectReference', 'Object the token is bound to; it dies with it.'],
  }),
  BoundObjectReference: type('The object a token is bound to.', {
    kind: [1, 'string', 'Pod, Secret or Node.'],
    apiVersion: [2, 'string', 'API version.'],
    name: [3, 'string', 'Name.'],
    uid: [4, 'string', 'UID.'],
  }),
  TokenRequestStatus: type('An issued token.', {
    token: [1, 'string', 'The token.', req],
    expirationTimestamp: [2, 'Time', 'When it expires.', req],
  }),
  TokenReview: object('Checks a token and tells who it belongs to.', {
    metadata: meta,
    spec: [2, 'TokenReviewSpec', 'The token.', req],
    status: [3, 'TokenReviewStatus', 'The answer.'],
  }),
  TokenReviewSpec: type('A token to check.', {
    token: [1, 'string', 'The token.'],
    audiences: [2, '[]string', 'Audiences the token must be valid for.', atomic],
  }),
  TokenReviewStatus: type('The answer of a token review.', {
    authenticated: [1, 'bool', 'The token is valid.'],
    user: [2, 'UserInfo', 'Who it belongs to.'],
    audiences: [4, '[]string', 'Audiences it is valid for.', atomic],
    error: [3, 'string', 'Why it could not be checked.'],
  }),
  UserInfo: type('An authenticated identity.', {
    username: [1, 'string', 'User name.'],
    uid: [2, 'string', 'Stable user id.'],
    groups: [3, '[]string', 'Groups.', atomic],
    extra: [4, 'map[ExtraValue]', 'Extra authenticator data.'],
  }),
  SelfSubjectReview: object('Tells the caller who the apiserver thinks it is (kubectl auth whoami).', {
    metadata: meta,
    status: [2, 'SelfSubjectReviewStatus', 'The identity.'],
  }),
  SelfSubjectReviewStatus: type('The identity of the caller.', {
    userInfo: [1, 'UserInfo', 'User, groups and extra data.'],
  }),
})

const reviewStatus = [3, 'SubjectAccessReviewStatus', 'The answer.'] as const

export const authorization = definePackage('authorization', 'io.k8s.api.authorization.v1', {
  SubjectAccessReview: object('Asks whether a user may perform an action.', {
    metadata: meta,
    spec: [2, 'SubjectAccessReviewSpec', 'The user and the action.', req],
    status: reviewStatus,
  }),
  LocalSubjectAccessReview: object('Asks whether a user may perform an action in one namespace.', {
    metadata: meta,
    spec: [2, 'SubjectAccessReviewSpec', 'The user and the action; namespace must match.', req],
    status: reviewStatus,
  }),
  SelfSubjectAccessReview: object('Asks whether the caller may perform an action (kubectl auth can-i).', {
    metadata: meta,
    spec: [2, 'SelfSubjectAccessReviewSpec', 'The action.', req],
    status: reviewStatus,
  }),
  SelfSubjectRulesReview: object('Lists what the caller may do in a namespace (kubectl auth can-i --list).', {
    metadata: meta,
    spec: [2, 'SelfSubjectRulesReviewSpec', 'The namespace.', req],
    status: [3, 'SubjectRulesReviewStatus', 'The rules.'],
  }),
  SubjectAccessReviewSpec: type('A user and an action; set resourceAttributes or nonResourceAttributes.', {
    resourceAttributes: [1, '*ResourceAttributes', 'An action on a resource.'],
    nonResourceAttributes: [2, '*NonResourceAttributes', 'An action on a URL path.'],
    user: [3, 'string', 'User name.'],
    groups: [4, '[]string', 'Groups.', atomic],
    extra: [5, 'map[ExtraValue]', 'Extra authenticator data.'],
    uid: [6, 'string', 'User id.'],
  }),
  SelfSubjectAccessReviewSpec: type('An action; set one of the two.', {
    resourceAttributes: [1, '*ResourceAttributes', 'An action on a resource.'],
    nonResourceAttributes: [2, '*NonResourceAttributes', 'An action on a URL path.'],
  }),
  ResourceAttributes: type('An action on a resource.', {
    namespace: [1, 'string', 'Namespace; all namespaces when empty.'],
    verb: [2, 'string', 'Verb (get, list, create, ...).'],
    group: [3, 'string', 'API group.'],
    version: [4, 'string', 'API version.'],
    resource: [5, 'string', 'Resource.'],
    subresource: [6, 'string', 'Subresource.'],
    name: [7, 'string', 'Object name; all when empty.'],
    fieldSelector: [8, '*FieldSelectorAttributes', 'Field selector of a list or watch.'],
    labelSelector: [9, '*LabelSelectorAttributes', 'Label selector of a list or watch.'],
  }),
  FieldSelectorAttributes: type('A field selector of a request.', {
    rawSelector: [1, 'string', 'The selector as written.'],
    requirements: [2, '[]FieldSelectorRequirement', 'The parsed selector.', atomic],
  }),
  FieldSelectorRequirement: type('One field selector requirement.', {
    key: [1, 'string', 'Field path.', req],
    operator: [2, 'string', 'In, NotIn, Exists or DoesNotExist.', req],
    values: [3, '[]string', 'Values.', atomic],
  }),
  LabelSelectorAttributes: type('A label selector of a request.', {
    rawSelector: [1, 'string', 'The selector as written.'],
    requirements: [2, '[]meta.LabelSelectorRequirement', 'The parsed selector.', atomic],
  }),
  NonResourceAttributes: type('An action on a URL path.', {
    path: [1, 'string', 'URL path.'],
    verb: [2, 'string', 'Verb (get, post, ...).'],
  }),
  SubjectAccessReviewStatus: type('The answer of an access review.', {
    allowed: [1, 'bool', 'The action is allowed.', req],
    denied: [4, 'bool', 'The action is explicitly denied.'],
    reason: [2, 'string', 'Why.'],
    evaluationError: [3, 'string', 'Error while evaluating.'],
  }),
  SelfSubjectRulesReviewSpec: type('The namespace to list rules for.', {
    namespace: [1, 'string', 'Namespace.'],
  }),
  SubjectRulesReviewStatus: type('What the caller may do.', {
    resourceRules: [1, '[]ResourceRule', 'Allowed actions on resources.', { required: true, listType: 'atomic' }],
    nonResourceRules: [2, '[]NonResourceRule', 'Allowed actions on URL paths.', { required: true, listType: 'atomic' }],
    incomplete: [3, 'bool', 'The list may miss rules.', req],
    evaluationError: [4, 'string', 'Error while evaluating.'],
  }),
  ResourceRule: type('Allowed verbs on resources.', {
    verbs: [1, '[]string', 'Verbs.', { required: true, listType: 'atomic' }],
    apiGroups: [2, '[]string', 'API groups.', atomic],
    resources: [3, '[]string', 'Resources.', atomic],
    resourceNames: [4, '[]string', 'Object names.', atomic],
  }),
  NonResourceRule: type('Allowed verbs on URL paths.', {
    verbs: [1, '[]string', 'Verbs.', { required: true, listType: 'atomic' }],
    nonResourceURLs: [2, '[]string', 'URL paths.', atomic],
  }),
})
