/**
 * Group commit for small durable writes that are not traces (guard decisions): items queued while
 * a commit is in flight ride the next one, so a burst of checks pays for one fsync, not one each.
 * `write` resolves only after the commit holding the item returned.
 */
export class GroupCommit<T> {
  private queue: Array<{ item: T; resolve: () => void; reject: (err: unknown) => void }> = [];
  private committing = false;
  private idle: Array<() => void> = [];

  constructor(
    private readonly commit: (items: T[]) => Promise<void>,
    private readonly maxBatch = 500,
  ) {}

  write(item: T): Promise<void> {
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
        await this.commit(batch.map((b) => b.item));
        for (const b of batch) b.resolve();
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
