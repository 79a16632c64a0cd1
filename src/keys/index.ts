export {
  ed25519PrivateKey,
  ed25519PublicKey,
  KEY_NAME_RE,
  type PublicKey,
  parsePublicKey,
  parseSecretKey,
  publicKeyFromSecretKey,
  type SecretKey,
} from './nix-key.js';
