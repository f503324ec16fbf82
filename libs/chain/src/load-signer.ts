import { readFile } from 'node:fs/promises';
import { Wallet, type HDNodeWallet, type Provider } from 'ethers';
import { ChainError } from './errors';

export interface LoadSignerOptions {
  provider: Provider;
  /** Where to read settings; process.env unless given. */
  env?: NodeJS.ProcessEnv;
  /** Variable holding a hex private key; ANCHORER_PRIVATE_KEY unless given. */
  keyEnv?: string;
  /** Variable holding the path of an encrypted JSON keystore; ANCHORER_KEYSTORE unless given. */
  keystoreEnv?: string;
  /** Variable holding the keystore password; ANCHORER_KEYSTORE_PASSWORD unless given. */
  passwordEnv?: string;
}

/**
 * The anchorer's signer, from a private key in an environment variable or else from a keystore file and
 * its password (ethers Wallet.fromEncryptedJson). Errors name the variable, never its value.
 */
export async function loadSigner(options: LoadSignerOptions): Promise<Wallet | HDNodeWallet> {
  const env = options.env ?? process.env;
  const keyEnv = options.keyEnv ?? 'ANCHORER_PRIVATE_KEY';
  const keystoreEnv = options.keystoreEnv ?? 'ANCHORER_KEYSTORE';
  const passwordEnv = options.passwordEnv ?? 'ANCHORER_KEYSTORE_PASSWORD';

  const key = env[keyEnv];
  if (key) {
    try {
      return new Wallet(key.trim(), options.provider);
    } catch {
      throw new ChainError('SIGNER_UNAVAILABLE', `${keyEnv} is not a valid hex private key (value not shown)`);
    }
  }
  const keystorePath = env[keystoreEnv];
  if (!keystorePath) {
    throw new ChainError('SIGNER_UNAVAILABLE', `set ${keyEnv} to a private key, or ${keystoreEnv} and ${passwordEnv} to a keystore file and its password`);
  }
  const password = env[passwordEnv];
  if (password === undefined) throw new ChainError('SIGNER_UNAVAILABLE', `${keystoreEnv} is set but ${passwordEnv} is not`);
  let json: string;
  try {
    json = await readFile(keystorePath, 'utf8');
  } catch (err) {
    throw new ChainError('SIGNER_UNAVAILABLE', `cannot read keystore ${keystorePath} (${keystoreEnv}): ${(err as Error).message}`);
  }
  try {
    const wallet = await Wallet.fromEncryptedJson(json, password);
    return wallet.connect(options.provider);
  } catch {
    throw new ChainError('SIGNER_UNAVAILABLE', `cannot decrypt keystore ${keystorePath}: wrong ${passwordEnv} or not a keystore`);
  }
}
