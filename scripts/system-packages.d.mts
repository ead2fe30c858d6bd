/** Types for scripts/system-packages.mjs (plain JavaScript, so npm test can run it before anything is built). */
export interface SystemPackage {
  pkg: string;
  present: () => boolean;
}
export const SYSTEM_PACKAGES: readonly SystemPackage[];
export function ensureSystemPackages(wanted?: readonly string[], who?: string, command?: string): void;
