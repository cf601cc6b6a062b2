import path from 'node:path';
import { ConfigError } from '../config/ConfigError';
import type { Env } from '../config/secrets';

/**
 * The follow-up's settings (docs/followup.md), read from the environment at start; a bad value stops the
 * server (or the `norpain` command) with one line naming the variable.
 */
export interface FollowUpSettings {
  /** FOLLOWUP_DELAY_MONTHS: the follow-up questionnaire is due this many months after the episode ended. */
  delayMonths: number;
  /**
   * FOLLOWUP_MIN_EPISODE_DAYS: an episode shorter than this (start to end) gets no 12-month follow-up.
   * Default 28: a pain centre's interdisciplinary assessment takes one to a few consultations within
   * some weeks; an episode that ended sooner was an assessment (or a referral sent back) without a
   * course of treatment whose outcome the 12-month questionnaire measures.
   */
  minEpisodeDays: number;
  /** FOLLOWUP_ANSWER_DAYS: how long an invitation stays open; after it the Task expires (failed). */
  answerDays: number;
  /** FOLLOWUP_REMINDER_DAYS: days after the last message before a reminder is sent. */
  reminderDays: number;
  /** FOLLOWUP_MAX_REMINDERS: reminders after the invitation, at most. */
  maxReminders: number;
  /** FOLLOWUP_DISPATCH_SECONDS: how often the server dispatches by itself; 0 = never (then cron runs
   * `norpain dispatch`). Default 300 in production, 0 in development (and so in tests). */
  dispatchSeconds: number;
  /** FOLLOWUP_CHANNEL: where invitations go; `outbox` (the development default) or `amqp` (helsenorge's
   * message delivery; its AMQP_* settings are read when the channel opens, src/followup/amqpConfig.ts). */
  channel: FollowUpChannelKind;
  /** FOLLOWUP_OUTBOX_DIR: the outbox channel's folder (default DATA_DIR/outbox). */
  outboxDir: string;
}

const CHANNEL_KINDS = ['outbox', 'amqp'] as const;
export type FollowUpChannelKind = (typeof CHANNEL_KINDS)[number];

function isChannelKind(value: string): value is FollowUpChannelKind {
  return (CHANNEL_KINDS as readonly string[]).includes(value);
}

export function loadFollowUpSettings(
  env: Env,
  options: { dataDir: string; production: boolean },
): FollowUpSettings {
  const channel = env.FOLLOWUP_CHANNEL?.trim() || 'outbox';
  if (!isChannelKind(channel)) {
    throw new ConfigError(`FOLLOWUP_CHANNEL must be one of ${CHANNEL_KINDS.join(', ')}, got "${channel}"`);
  }
  return {
    delayMonths: whole(env, 'FOLLOWUP_DELAY_MONTHS', 12, 1, 120),
    minEpisodeDays: whole(env, 'FOLLOWUP_MIN_EPISODE_DAYS', 28, 0, 3650),
    answerDays: whole(env, 'FOLLOWUP_ANSWER_DAYS', 60, 1, 3650),
    reminderDays: whole(env, 'FOLLOWUP_REMINDER_DAYS', 14, 1, 3650),
    maxReminders: whole(env, 'FOLLOWUP_MAX_REMINDERS', 2, 0, 20),
    dispatchSeconds: whole(env, 'FOLLOWUP_DISPATCH_SECONDS', options.production ? 300 : 0, 0, 86_400),
    channel,
    outboxDir: path.resolve(env.FOLLOWUP_OUTBOX_DIR?.trim() || path.join(options.dataDir, 'outbox')),
  };
}

function whole(env: Env, name: string, fallback: number, min: number, max: number): number {
  const text = env[name]?.trim();
  if (text === undefined || text === '') {
    return fallback;
  }
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}
