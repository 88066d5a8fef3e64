import type { Role } from '../../src/model/principal';
import { mintToken } from '../../src/auth/tokens';

export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef0123456789abcdef';

export function tokenFor(role: Role, sub = `${role}-1`, extraClaims?: Record<string, unknown>): string {
  return mintToken({ secret: TEST_JWT_SECRET, sub, role, ...(extraClaims ? { extraClaims } : {}) });
}

export function bearer(role: Role, sub?: string): { Authorization: string } {
  return { Authorization: `Bearer ${tokenFor(role, sub)}` };
}
