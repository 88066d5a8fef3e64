import { randomBytes } from 'node:crypto';

import { RESULT_FILE_BUCKET, ResultFileRepository } from '../../src/storage/result-file-repository';
import { useTestDatabase } from '../helpers/database';
import { clearCollections } from '../helpers/storage';

/** The contract of ResultFileRepository: jobs' result files in their own GridFS bucket, found by job. */
const db = useTestDatabase();
let files: ResultFileRepository;

const FILES = `${RESULT_FILE_BUCKET}.files`;
const CHUNKS = `${RESULT_FILE_BUCKET}.chunks`;

beforeAll(() => {
  files = new ResultFileRepository(db.connection);
});
beforeEach(async () => {
  await clearCollections(db.connection, [FILES, CHUNKS, 'assetFiles.files', 'assetFiles.chunks']);
});

async function store(jobId: string, bytes: Buffer): Promise<string> {
  return (await files.uploadChunks({ chunks: [bytes], filename: `${jobId}.bin`, metadata: { jobId } })).fileId;
}

it('stores files in the resultFiles bucket (not the assets one) and reads them back', async () => {
  const bytes = randomBytes(300 * 1024);
  const fileId = await store('job_a', bytes);
  expect((await files.read(fileId)).equals(bytes)).toBe(true);
  expect(await db.connection.collection(FILES).countDocuments()).toBe(1);
  expect(await db.connection.collection('assetFiles.files').countDocuments()).toBe(0);
  expect(await files.fileIdsOfJob('job_a')).toEqual([fileId]);
});

it("deletes every file of the given jobs, chunks included, and leaves other jobs' files", async () => {
  const [a1, a2, b1, c1] = [await store('job_a', randomBytes(1_000)), await store('job_a', randomBytes(600 * 1024)), await store('job_b', randomBytes(10)), await store('job_c', randomBytes(10))];
  expect(await files.deleteFilesOfJobs(['job_a', 'job_b', 'job_missing'])).toBe(3);
  expect(await files.fileIdsOfJob('job_a')).toEqual([]);
  expect(await files.fileIdsOfJob('job_b')).toEqual([]);
  expect(await files.fileIdsOfJob('job_c')).toEqual([c1]);
  expect((await db.connection.collection(CHUNKS).distinct('files_id')).map(String)).toEqual([c1]);
  expect([a1, a2, b1]).toHaveLength(3);
  expect(await files.deleteFilesOfJobs([])).toBe(0);
});
