/** Plain value types shared by the domain and the surfaces. No framework types here. */
export const PRODUCTS = ['jira', 'jsm', 'jpd', 'confluence', 'compass', 'bitbucket', 'trello', 'statuspage'] as const;
export type Product = (typeof PRODUCTS)[number];

export const ACCESS_ROLES = ['user', 'agent', 'customer'] as const;
export type AccessRole = (typeof ACCESS_ROLES)[number];

export const ROLE_KINDS = ['org_admin', 'site_admin', 'product_admin', 'billing_contact', 'technical_contact'] as const;
export type RoleKind = (typeof ROLE_KINDS)[number];
/** Roles that are held on one site rather than on the whole org. */
export const SITE_ROLES: ReadonlySet<RoleKind> = new Set(['site_admin', 'product_admin']);

export type AccountStatus = 'active' | 'disabled';
export type AccountSource = 'manual' | 'scim' | 'jit';

export const PLANS = ['standard', 'premium'] as const;
export type Plan = (typeof PLANS)[number];
export const CYCLES = ['monthly', 'annual'] as const;
export type BillingCycle = (typeof CYCLES)[number];
export type Edition = 'commercial' | 'community' | 'academic';
