import { GroupCommit } from '../../src/group-commit';

describe('GroupCommit', () => {
  it('flushes a lone item at once, and items arriving during a flush together in the next', async () => {
    const flushes: number[][] = [];
    const commit = new GroupCommit<number, string>({ flush: async (items) => (flushes.push(items), items.map((n) => `ok ${n}`)), maxBatch: 100 });
    const first = commit.submit(1);
    const rest = [2, 3, 4].map((n) => commit.submit(n));
    expect(await Promise.all([first, ...rest])).toEqual(['ok 1', 'ok 2', 'ok 3', 'ok 4']);
    expect(flushes).toEqual([[1], [2, 3, 4]]);
  });

  it('never puts more than maxBatch items in one flush', async () => {
    const sizes: number[] = [];
    const commit = new GroupCommit<number, number>({ flush: async (items) => (sizes.push(items.length), items), maxBatch: 3 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => commit.submit(i)));
    expect(sizes).toEqual([1, 3, 3, 3]);
  });

  it('rejects every item of a failed flush, and goes on with the next', async () => {
    let calls = 0;
    const commit = new GroupCommit<number, number>({
      flush: async (items) => {
        calls += 1;
        if (calls === 1) throw new Error('database down');
        return items;
      },
      maxBatch: 10,
    });
    await expect(commit.submit(1)).rejects.toThrow('database down');
    await expect(commit.submit(2)).resolves.toBe(2);
  });

  it('answers no caller before the flush carrying its item has finished', async () => {
    let release!: () => void;
    const written: number[] = [];
    const commit = new GroupCommit<number, number>({
      flush: async (items) => {
        await new Promise<void>((resolve) => (release = resolve));
        written.push(...items);
        return items;
      },
      maxBatch: 10,
    });
    let answered = false;
    const pending = commit.submit(7).then((n) => ((answered = true), n));
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    release();
    expect(await pending).toBe(7);
    expect(written).toEqual([7]);
  });
});
