export default async function globalTeardown(): Promise<void> {
  await globalThis.__JOBS_TEST_DB__?.stop();
}
