// Screenshot harness: mocks the Tauri IPC with real engine output (demo/*.json, captured from
// `cairn --json ...`), then mounts the real app. ?screen=library|costs|settings|review picks a
// screen; ?ask=QUESTION asks it (streamed token by token through the channel protocol);
// ?theme=dark forces the dark theme.
import { mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import status from './status.json';
import passages from './passages.json';
import abstained from './abstained.json';
import generated from './generated.json';
import costsDay from './costs-day.json';
import costsProvider from './costs-provider.json';
import costsModel from './costs-model.json';
import costsFolder from './costs-folder.json';
import rankers from './rankers.json';
import budget from './budget.json';
import policy from './policy.json';
import settings from './settings.json';
import keys from './keys.json';

const params = new URLSearchParams(location.search);
if (params.get('theme')) localStorage.setItem('cairn.theme', params.get('theme')!);

const answers: Record<string, unknown>[] = [passages, abstained, generated];
const conversations = answers.map((a, i) => ({
  id: (a.conversation_id as number) ?? i + 1,
  title: a.question as string,
  created_ms: Date.now() - (i + 1) * 3_600_000,
  updated_ms: Date.now() - (i + 1) * 3_600_000,
  turns: 1,
}));

function send(channelId: number, index: number, message: unknown) {
  (window as any).__TAURI_INTERNALS__.runCallback(channelId, { index, message });
}

mockIPC(async (cmd, args: any) => {
  switch (cmd) {
    case 'status':
      return status;
    case 'conversations':
      return conversations;
    case 'turns': {
      const a = answers.find((x) => x.conversation_id === args.id) ?? passages;
      return [{ id: 1, conversation_id: args.id, question_id: a.question_id, question: a.question, answer: a.text, answer_json: JSON.stringify(a), at_ms: Date.now() }];
    }
    case 'ask': {
      const q = String(args.question).toLowerCase();
      const a = q.includes('swallow') ? abstained : q.includes('model') ? generated : passages;
      const text = String(a.text);
      const words = text.match(/\S+\s*/g) ?? [];
      const id = args.onToken.id ?? args.onToken;
      for (let i = 0; i < words.length; i++) {
        send(id, i, words[i]);
        await new Promise((r) => setTimeout(r, 4));
      }
      return { ...a, question: args.question };
    }
    case 'costs':
      return { day: costsDay, provider: costsProvider, model: costsModel, folder: costsFolder }[args.groupBy as string];
    case 'budget_status':
      return {
        ...budget,
        gauges: [
          { provider: null, window: 'daily', limit: 1_000_000_000, spent: 420_000_000, used: 0.42 },
          { provider: null, window: 'monthly', limit: 20_000_000_000, spent: 17_300_000_000, used: 0.865 },
        ],
      };
    case 'rankers':
      return rankers;
    case 'settings':
      return settings;
    case 'policy':
      return params.get('locked')
        ? {
            ...policy,
            policy: {
              source: '/etc/cairn/policy.toml',
              broken: null,
              rules: [
                { rule: 'providers.allowed', text: 'only these providers may be used: local' },
                { rule: 'locked.chat.provider', text: 'the setting chat.provider is kept at "local"' },
                { rule: 'locked.answer.min_confidence', text: 'the setting answer.min_confidence is kept at 0.5' },
              ],
            },
          }
        : policy;
    case 'key_status':
      return keys;
    case 'reviews':
      return [];
    case 'feedback':
      return { feedback_id: 1, event_id: args.event, signal: args.signal, path: null, retrained: null };
    default:
      return null;
  }
}, { shouldMockEvents: true });

await import('../src/main');

const screen = params.get('screen');
const ask = params.get('ask');
setTimeout(() => {
  if (screen) {
    [...document.querySelectorAll('nav button')].find((b) => b.textContent?.trim().toLowerCase().startsWith(screen))?.dispatchEvent(new MouseEvent('click', { bubbles: true }));
  }
  if (params.get('indexing')) {
    const folder = (status as any).folders[0].path;
    emit('cairn://status', { kind: 'indexing', folder, done: 13, total: 20 });
    emit('cairn://status', { kind: 'watching', folders: [folder] });
  }
  if (ask) {
    const box = document.getElementById('question') as HTMLTextAreaElement;
    box.value = ask;
    box.dispatchEvent(new Event('input', { bubbles: true }));
    box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
  }
  if (params.get('why')) {
    setTimeout(() => {
      [...document.querySelectorAll('button')].find((b) => b.textContent?.includes('Why these sources'))?.click();
    }, 1500);
  }
}, 200);
