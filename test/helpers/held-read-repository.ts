import type { ScheduleState } from '../../src/model/schedule';
import { ScheduleRepository } from '../../src/storage/schedule-repository';
import { hold, type Hold } from './hold';

/**
 * A schedule repository (the real one, on the real database) whose next read by name stops until
 * released: it holds an edit or delete between the read it is computed from and its write, while
 * the test changes the schedule under it.
 */
export class HeldReadRepository extends ScheduleRepository {
  private held: Hold | undefined;

  holdNextRead(): { reached: Promise<void>; release: () => void } {
    this.held = hold();
    return this.held;
  }

  override async findByName(name: string): Promise<ScheduleState | null> {
    const doc = await super.findByName(name);
    const held = this.held;
    if (held) {
      this.held = undefined;
      await held.arrive();
    }
    return doc;
  }
}
