import mongoose from 'mongoose';

import { UnavailableError } from '../../src/errors';
import { translateStorageError } from '../../src/storage/errors';

/**
 * Which driver errors mean "the database cannot serve us now" (503 `unavailable`, retry later) and
 * which do not. The outage test meets most of these for real; this pins the cases it meets rarely
 * (a failover's server codes, the EPIPE the driver lets through unwrapped).
 */

const { MongoServerError, MongoNetworkError, MongoNetworkTimeoutError, MongoNotConnectedError, MongoWriteConcernError, MongoBulkWriteError } = mongoose.mongo;

const serverError = (code: number, errorLabels: string[] = []) => new MongoServerError({ errmsg: `code ${code}`, code, errorLabels });
const epipe = Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' });

describe('storage error translation', () => {
  it.each([
    ['a network error', new MongoNetworkError('connection 3 to 127.0.0.1:27017 closed')],
    ['a network timeout', new MongoNetworkTimeoutError('connection timed out')],
    ['a client that is not connected', new MongoNotConnectedError('not connected')],
    ['a write concern that timed out', new MongoWriteConcernError({ ok: 1, writeConcernError: { code: 64, errmsg: 'waiting for replication timed out' } })],
    ['a primary that stepped down', serverError(189)],
    ['a node that is no longer primary', serverError(10107)],
    ['an operation interrupted by an election', serverError(11602)],
    ['a node shutting down', serverError(91)],
    ['an error the driver labels retryable', serverError(9999, ['RetryableWriteError'])],
    ['a raw EPIPE from the driver writing to a closed socket', epipe],
    ['a driver error wrapped by a service', new Error('could not record the transfer', { cause: new MongoNetworkError('closed') })],
    ['a bulk write that never reached the server', new MongoBulkWriteError(new MongoNetworkError('connect ECONNREFUSED'), {} as never)],
  ])('maps %s to 503 unavailable', (_name, err) => {
    expect(translateStorageError(err)).toBeInstanceOf(UnavailableError);
  });

  it.each([
    ['a duplicate key', serverError(11000)],
    ['a document that fails validation', serverError(121)],
    ['a bug in our code', new TypeError("Cannot read properties of undefined (reading 'getTime')")],
    ['a file that is missing', Object.assign(new Error('no such file'), { code: 'ENOENT' })],
  ])('leaves %s alone (a 500 or the caller’s own handling)', (_name, err) => {
    expect(translateStorageError(err)).toBeUndefined();
  });
});
