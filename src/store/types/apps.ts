/** Applications: the tenants every other record belongs to, each owned by one account. */
import type { AuditInput } from './audit.js';

export interface App {
  clientId: string;
  accountId: string;
  name: string;
  panopticonEnabled: boolean;
  hmacEnabled: boolean;
  /** Keep checked tool arguments verbatim (off: only their keyed hash is stored). */
  keepArguments: boolean;
  createdAt: number;
}

export interface AppPatch {
  name?: string | undefined;
  panopticonEnabled?: boolean | undefined;
}

export interface AppStore {
  /** Creates the app with its first audit entry (`audit`), in one transaction. */
  create(input: { clientId: string; accountId: string; name: string; now: number }, audit: AuditInput): Promise<App>;
  list(accountId: string): Promise<App[]>;
  /** Scoped to the account: another account's app is reported as absent. */
  find(accountId: string, clientId: string): Promise<App | null>;
  /**
   * Applies the patch and appends `audit(before, after)`'s entries in the same transaction; null
   * (nothing written) when the account has no such app.
   */
  update(accountId: string, clientId: string, patch: AppPatch, audit: (before: App, after: App) => AuditInput[]): Promise<App | null>;
}
