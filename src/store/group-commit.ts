/**
 * Group commit for small durable writes that are not traces (guard decisions): items queued while
 * a commit is in flight ride the next one, so a burst of checks pays for one fsync, not one each.
 * `write` resolves only after the commit holding the item returned, with what the commit reported
 * for that item (`commit` answers one result per item, in order).
 */
export class GroupCommit<T, R = void> {
  private queue: Array<{ item: T; resolve: (result: R) => void; reject: (err: unknown) => void }> = [];
  private committing = false;
  private idle: Array<() => void> = [];

  constructor(
    private readonly commit: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = 500,
  ) {}

  write(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.committing) {
        this.committing = true;
        setImmediate(() => void this.run());
      }
    });
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const results = await this.commit(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i] as R));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.committing = false;
    for (const w of this.idle.splice(0)) w();
  }

  async drain(): Promise<void> {
    if (!this.committing) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }
}
