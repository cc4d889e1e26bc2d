/** `logi panopticon webhooks …`: notification endpoints for approvals and kill switches. */
import { Option, type Command } from 'commander';
import { GUARD_EVENT_TYPES } from '../guard/events.js';
import { authedClient, enc, positiveInt, run, UsageError, withJson, type Json } from './common.js';
import { record, table } from './format.js';

const webhookColumns: Array<[string, string]> = [['id', 'id'], ['format', 'format'], ['url', 'url'], ['events', 'events'], ['created_at', 'created']];
const deliveryColumns: Array<[string, string]> = [
  ['id', 'id'], ['event', 'event'], ['status', 'status'], ['attempts', 'attempts'], ['last_status_code', 'code'], ['last_error', 'error'], ['created_at', 'created'],
];

export function registerWebhookCommands(pano: Command): void {
  const webhooks = pano.command('webhooks').description('notification endpoints: add, list, remove, deliveries');

  // The endpoint URL is positional: --url already names the server, for every command.
  withJson(webhooks.command('add <client_id> <endpoint_url>'))
    .description('add an endpoint (an http:// or https:// URL that receives POSTs); prints its signing secret once')
    .addOption(new Option('--format <format>', 'json (generic) or slack (incoming webhook)').choices(['json', 'slack']).default('json'))
    .option('--events <list>', `comma-separated, default all: ${GUARD_EVENT_TYPES.join(',')}`)
    .action(run(async (cmd, clientId, endpointUrl) => {
      const o = cmd.opts<{ format: string; events?: string }>();
      const body: Json = { url: endpointUrl, format: o.format };
      if (o.events !== undefined) {
        const events = o.events.split(',').map((e) => e.trim()).filter((e) => e !== '');
        const unknown = events.filter((e) => !(GUARD_EVENT_TYPES as readonly string[]).includes(e));
        if (events.length === 0 || unknown.length > 0) throw new UsageError(`--events: ${unknown.join(', ') || '(empty)'} not among ${GUARD_EVENT_TYPES.join(', ')}`);
        body.events = events;
      }
      const res = await authedClient(cmd).request<Json>('POST', `/api/apps/${enc(clientId!)}/webhooks`, body);
      const { secret, ...rest } = res;
      return { json: res, human: `Signing secret (shown only once, store it now):\n\n  ${String(secret)}\n\n` + record(rest) };
    }));

  withJson(webhooks.command('list <client_id>'))
    .description("the application's endpoints")
    .action(run(async (cmd, clientId) => {
      const res = await authedClient(cmd).request<{ webhooks: Json[] }>('GET', `/api/apps/${enc(clientId!)}/webhooks`);
      return { json: res.webhooks, human: table(res.webhooks, webhookColumns) };
    }));

  withJson(webhooks.command('remove <client_id> <webhook_id>'))
    .description('remove an endpoint; deliveries not yet sent are dropped')
    .action(run(async (cmd, clientId, webhookId) => {
      const res = await authedClient(cmd).request<Json>('DELETE', `/api/apps/${enc(clientId!)}/webhooks/${enc(webhookId!)}`);
      return { json: res, human: `Removed ${webhookId}.\n` };
    }));

  withJson(webhooks.command('deliveries <client_id> <webhook_id>'))
    .description('recent deliveries to an endpoint, newest first, with their outcome')
    .option('--limit <n>', 'how many (1-500)', positiveInt, 20)
    .action(run(async (cmd, clientId, webhookId) => {
      const limit = cmd.opts<{ limit: number }>().limit;
      const res = await authedClient(cmd).request<{ deliveries: Json[] }>('GET', `/api/apps/${enc(clientId!)}/webhooks/${enc(webhookId!)}/deliveries?limit=${limit}`);
      return { json: res.deliveries, human: table(res.deliveries, deliveryColumns) };
    }));
}
