import type { ScheduleState } from '../../src/model/schedule';
import { ScheduleRepository } from '../../src/storage/schedule-repository';

/**
 * A schedule repository (the real one, on the real database) whose next read by name stops until
 * released: it holds an edit or delete between the read it is computed from and its write, while
 * the test changes the schedule under it.
 */
export class HeldReadRepository extends ScheduleRepository {
  private hold: { reached: () => void; released: Promise<void> } | undefined;

  holdNextRead(): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.hold = { reached, released };
    return { reached: reachedPromise, release };
  }

  override async findByName(name: string): Promise<ScheduleState | null> {
    const doc = await super.findByName(name);
    const hold = this.hold;
    if (hold) {
      this.hold = undefined;
      hold.reached();
      await hold.released;
    }
    return doc;
  }
}
