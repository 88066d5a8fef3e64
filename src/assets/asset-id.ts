import { ValidationError } from '../errors';
import { randomHex } from '../random-hex';

const ASSET_ID = /^asset_[0-9a-f]{24}$/;

export function newAssetId(): string {
  return `asset_${randomHex(12)}`;
}

export function isAssetId(value: unknown): value is string {
  return typeof value === 'string' && ASSET_ID.test(value);
}

/** 422 for anything that cannot be an asset id, so junk never reaches a query. */
export function parseAssetId(value: unknown, field = 'assetId'): string {
  if (isAssetId(value)) return value;
  throw new ValidationError('not a valid asset id', [{ field, message: 'must be "asset_" followed by 24 lowercase hex digits' }]);
}
