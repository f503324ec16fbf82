// The secrets a DP-SGD or certified model draws its noise from (privacy.noiseSeed, certified.noiseSeed). A replay
// needs them, so they are kept, but never in clear: models.noise_seeds holds them sealed with AES-256-GCM under a
// data key of the model's own (models.noise_key_id, in the key store), bound to the model's id; the JSON columns
// (models.engine_config, model_versions.engine_state's config and manifest) hold the settings without them. They
// are opened when an authorised reader (ml and auditor keys: GET /v1/models) or the engine (training, forgetting)
// reads the model.
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KeyStore, createKeyId, openPayload, payloadAssociatedData, sealPayload } from '@lethe/keystore';
import type { ShardDispatcher, ShardTask } from '@lethe/unlearning';
import { KEY_STORE } from '../config/config.provider';

/** A model's noise seeds, by the part of its config they belong to. */
export interface NoiseSeeds {
  privacy?: string;
  certified?: string;
}

const PARTS = ['privacy', 'certified'] as const;

type WithSeeds = { privacy?: unknown; certified?: unknown };

/** The config without its noise seeds (a copy; the input is left as it is) and the seeds it held. */
export function takeNoiseSeeds<T>(config: T): { config: T; seeds: NoiseSeeds } {
  const seeds: NoiseSeeds = {};
  const out = { ...(config as WithSeeds) };
  for (const part of PARTS) {
    const settings = out[part] as { noiseSeed?: unknown } | undefined;
    if (settings && typeof settings === 'object' && typeof settings.noiseSeed === 'string') {
      seeds[part] = settings.noiseSeed;
      const { noiseSeed: _, ...rest } = settings;
      out[part] = rest;
    }
  }
  return { config: out as T, seeds };
}

/** The config with its noise seeds put back (a copy). */
export function putNoiseSeeds<T>(config: T, seeds: NoiseSeeds): T {
  const out = { ...(config as WithSeeds) };
  for (const part of PARTS) {
    const settings = out[part] as object | undefined;
    if (settings && seeds[part] !== undefined) out[part] = { ...settings, noiseSeed: seeds[part] };
  }
  return out as T;
}

export function hasNoiseSeeds(seeds: NoiseSeeds): boolean {
  return PARTS.some((part) => seeds[part] !== undefined);
}

/** Whether a config has a part that draws from a noise seed (privacy, certified), given or not. */
export function usesNoiseSeeds(config: WithSeeds): boolean {
  return PARTS.some((part) => config[part] !== undefined && config[part] !== null);
}

/**
 * A dispatcher whose shard tasks go out without the model's noise seeds: a task waits in job_tasks.input (JSON, in
 * clear), so the worker that takes it opens the seeds from the model's row instead (ShardTaskService).
 */
export function withoutNoiseSeeds(dispatcher: ShardDispatcher): ShardDispatcher {
  const strip = (task: ShardTask): ShardTask => ({ ...task, config: takeNoiseSeeds(task.config).config });
  return { store: dispatcher.store, train: (tasks, onProgress, onResult) => dispatcher.train(tasks.map(strip), onProgress, onResult) };
}

const associatedData = (modelId: string) => payloadAssociatedData('noise-seeds', modelId);

export function sealNoiseSeeds(dataKey: Uint8Array, modelId: string, seeds: NoiseSeeds): Buffer {
  const plaintext = Buffer.from(JSON.stringify(seeds), 'utf8');
  try {
    return sealPayload(dataKey, plaintext, associatedData(modelId));
  } finally {
    plaintext.fill(0);
  }
}

export function openNoiseSeeds(dataKey: Uint8Array, modelId: string, sealed: Uint8Array): NoiseSeeds {
  const plaintext = openPayload(dataKey, sealed, associatedData(modelId));
  try {
    return JSON.parse(plaintext.toString('utf8')) as NoiseSeeds;
  } finally {
    plaintext.fill(0);
  }
}

/** Seals a model's seeds under a fresh data key of its own: the columns noise_key_id and noise_seeds. */
export async function sealModelNoiseSeeds(keyStore: KeyStore, modelId: string, seeds: NoiseSeeds): Promise<{ keyId: string; sealed: Buffer }> {
  const keyId = createKeyId();
  const dataKey = await keyStore.createKey(keyId);
  try {
    return { keyId, sealed: sealNoiseSeeds(dataKey, modelId, seeds) };
  } finally {
    dataKey.fill(0);
  }
}

/** Where a model's sealed seeds are (its row's noise_key_id and noise_seeds; both null for a model without). */
export interface SealedNoiseSeeds {
  id: string;
  noiseKeyId: string | null;
  noiseSeeds: Buffer | null;
}

@Injectable()
export class NoiseSeedVault {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(KEY_STORE) private readonly keyStore: KeyStore,
  ) {}

  /** A new model's engine config without its seeds, and the columns that hold them sealed (null without seeds). */
  async seal<T>(modelId: string, engineConfig: T): Promise<{ engineConfig: T; noiseKeyId: string | null; noiseSeeds: Buffer | null }> {
    const { config, seeds } = takeNoiseSeeds(engineConfig);
    if (!hasNoiseSeeds(seeds)) return { engineConfig: config, noiseKeyId: null, noiseSeeds: null };
    const { keyId, sealed } = await sealModelNoiseSeeds(this.keyStore, modelId, seeds);
    return { engineConfig: config, noiseKeyId: keyId, noiseSeeds: sealed };
  }

  /** The model's seeds, opened ({} for a model without). */
  async open(model: SealedNoiseSeeds): Promise<NoiseSeeds> {
    if (model.noiseKeyId === null || model.noiseSeeds === null) return {};
    const dataKey = await this.keyStore.getKey(model.noiseKeyId);
    try {
      return openNoiseSeeds(dataKey, model.id, model.noiseSeeds);
    } finally {
      dataKey.fill(0);
    }
  }

  /** The seeds of the model `modelId`, read from its row and opened. */
  async openOf(modelId: string): Promise<NoiseSeeds> {
    const [row]: { noise_key_id: string | null; noise_seeds: Buffer | null }[] = await this.dataSource.query(
      `SELECT noise_key_id, noise_seeds FROM models WHERE id = $1`,
      [modelId],
    );
    if (!row) return {};
    return this.open({ id: modelId, noiseKeyId: row.noise_key_id, noiseSeeds: row.noise_seeds });
  }
}
