// The token pair every tab of the browser shares (session.ts says why it is kept here): one
// IndexedDB record, read and changed in transactions, and a BroadcastChannel that tells the other
// tabs when it changed.

/** The token pair as the tabs share it. */
export interface HeldSession {
  /** Whose it is: a page that showed another account reloads when another tab logs in. */
  username: string
  access_token: string
  refresh_token: string
  /** When the pair arrived and when its access token runs out, in milliseconds of this
   * browser's clock, which all its tabs read alike. */
  received_at: number
  expires_at: number
}

/** What a change does with the pair it finds: puts another, removes it (null), or leaves it
 * (undefined). */
export type PairChange = (found: HeldSession | null) => HeldSession | null | undefined

const DATABASE = 'citycase'
const STORE = 'session'
const KEY = 'pair'

const changes = new BroadcastChannel('citycase.session')
let opened: Promise<IDBDatabase> | null = null

function database(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1)
    request.onupgradeneeded = () => request.result.createObjectStore(STORE)
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
  return opened
}

/** The pair stored, and `change` made to it in the same transaction, so that nothing another tab
 * does comes between the two; resolves once the change is committed, with the pair it found. */
async function transact(change?: PairChange): Promise<{ found: HeldSession | null; changed: boolean }> {
  const db = await database()
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(STORE, change ? 'readwrite' : 'readonly')
    const store = transaction.objectStore(STORE)
    const read = store.get(KEY)
    let found: HeldSession | null = null
    let changed = false
    read.onsuccess = () => {
      found = (read.result as HeldSession | undefined) ?? null
      const next = change?.(found)
      if (next === undefined) return
      changed = true
      if (next === null) store.delete(KEY)
      else store.put(next, KEY)
    }
    transaction.oncomplete = () => resolve({ found, changed })
    transaction.onerror = () => reject(transaction.error)
    transaction.onabort = () => reject(transaction.error)
  })
}

/** The pair stored, or null. */
export async function readPair(): Promise<HeldSession | null> {
  return (await transact()).found
}

/** Changes the pair as `change` decides from the pair it finds, and tells the other tabs;
 * resolves with the pair found. */
export async function changePair(change: PairChange): Promise<HeldSession | null> {
  const { found, changed } = await transact(change)
  if (changed) changes.postMessage('changed')
  return found
}

/** `listener` is called when another tab has changed the pair (it reads it again). */
export function onPairChanged(listener: () => void): void {
  changes.addEventListener('message', listener)
}
