// App-wide state fed by `cairn://status` events: indexing progress per folder, watcher, warnings.
import * as api from './api';
import type { StatusEvent } from './types';

export interface Progress {
  done: number;
  total: number;
}

class AppState {
  indexing = $state<Record<string, Progress>>({});
  watching = $state<string[]>([]);
  warnings = $state<string[]>([]);
  lastError = $state<string | null>(null);
  /** Folders the watcher cannot follow live (a periodic rescan covers them), and why. */
  notWatched = $state<Record<string, string>>({});
  closing = $state(false);
  /** Bumped when an index pass finishes, so screens reload their data. */
  synced = $state(0);

  handle(e: StatusEvent) {
    switch (e.kind) {
      case 'indexing':
        if (e.total > 0 && e.done >= e.total) {
          const { [e.folder]: _, ...rest } = this.indexing;
          this.indexing = rest;
        } else {
          this.indexing = { ...this.indexing, [e.folder]: { done: e.done, total: e.total } };
        }
        break;
      case 'watching':
        this.watching = e.folders;
        break;
      case 'synced':
        this.indexing = {};
        this.synced++;
        break;
      case 'budget_warning':
        this.warnings = [...this.warnings.slice(-4), e.message];
        break;
      case 'error':
        this.lastError = `${e.message} (${e.code})`;
        break;
      case 'not_watched':
        this.notWatched = { ...this.notWatched, [e.folder]: e.reason };
        break;
      case 'closing':
        this.closing = true;
        break;
      default:
        // rescan, watch_stopped and kinds added later: nothing to show.
        break;
    }
  }

  async start() {
    return api.onStatus((e) => this.handle(e));
  }
}

export const app = new AppState();
