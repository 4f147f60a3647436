/**
 * Firebase for the app: the web config comes from Hosting's reserved URL `/__/firebase/init.json`
 * (served by Hosting in production and by the Hosting emulator locally), so nothing
 * project-specific is built in. A `demo-*` project exists only on the emulators: then the
 * emulators' addresses come from the Hosting emulator's `/__/firebase/init.js?useEmulator=true`.
 */
import { initializeApp, type FirebaseOptions } from "firebase/app";
import { connectAuthEmulator, getAuth, type Auth } from "firebase/auth";
import { connectFirestoreEmulator, getFirestore, type Firestore } from "firebase/firestore";

export interface Services { auth: Auth; db: Firestore; projectId: string; emulated: boolean }

interface EmulatorAddress { host: string; port: number; hostAndPort: string }

async function emulatorAddresses(): Promise<Record<string, EmulatorAddress>> {
  const js = await (await fetch("/__/firebase/init.js?useEmulator=true")).text();
  const m = js.match(/var firebaseEmulators = (\{[\s\S]*?\});/);
  if (!m) throw new Error("The Hosting emulator did not say where the emulators are.");
  return JSON.parse(m[1]);
}

export async function startFirebase(): Promise<Services> {
  // Both asked at once; the emulator addresses are used only for a demo-* project.
  const local = ["localhost", "127.0.0.1", "[::1]"].includes(location.hostname);
  const [response, addresses] = await Promise.all([
    fetch("/__/firebase/init.json"),
    local ? emulatorAddresses().catch(() => null) : Promise.resolve(null),
  ]);
  if (!response.ok) throw new Error(`Firebase web config unavailable (HTTP ${response.status}).`);
  const config = (await response.json()) as FirebaseOptions;
  const emulated = (config.projectId ?? "").startsWith("demo-");
  // Known before Auth starts: Auth restores a persisted session at once, and connecting it to
  // the emulator after that fails (auth/emulator-config-failed).
  const emulators = emulated ? addresses ?? (await emulatorAddresses()) : null;
  const app = initializeApp(config);
  const auth = getAuth(app);
  const db = getFirestore(app);
  if (emulators) {
    connectAuthEmulator(auth, `http://${emulators.auth.hostAndPort}`, { disableWarnings: true });
    connectFirestoreEmulator(db, emulators.firestore.host, emulators.firestore.port);
  }
  return { auth, db, projectId: config.projectId ?? "", emulated };
}
