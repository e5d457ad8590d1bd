// Interned route attributes: one copy of each distinct AS path, community set, large-community set
// and next hop, and of each combination of them, reference counted and freed when no route uses it.

/** A table of distinct values by key with reference counts; ids of freed values are reused. */
export class Interned<V> {
  private readonly ids = new Map<string, number>()
  private readonly values: (V | undefined)[] = []
  private readonly keys: (string | undefined)[] = []
  private refs = new Int32Array(256)
  private readonly free: number[] = []

  /** Distinct values held. */
  get size(): number {
    return this.ids.size
  }

  /** Id of the value with this key (made by `make` the first time), its count raised by one. */
  intern(key: string, make: () => V): number {
    let id = this.ids.get(key)
    if (id === undefined) {
      id = this.free.pop() ?? this.values.length
      if (id >= this.refs.length) {
        const grown = new Int32Array(this.refs.length * 2)
        grown.set(this.refs)
        this.refs = grown
      }
      this.ids.set(key, id)
      this.values[id] = make()
      this.keys[id] = key
    }
    this.refs[id]!++
    return id
  }

  /** One more user of an id already held. */
  retain(id: number): void {
    this.refs[id]!++
  }

  /** One user less; returns the value when this was the last one (it is then forgotten). */
  release(id: number): V | undefined {
    if (--this.refs[id]! > 0) return undefined
    const value = this.values[id]
    this.ids.delete(this.keys[id]!)
    this.values[id] = undefined
    this.keys[id] = undefined
    this.free.push(id)
    return value
  }

  get(id: number): V {
    return this.values[id] as V
  }
}

/** What a route carries besides its prefix, with each part interned. */
export interface AttributeSet {
  readonly asPath: readonly number[]
  readonly communities: readonly number[]
  readonly largeCommunities: readonly number[]
  /** 16 bytes, or undefined when the UPDATE had none for this family. */
  readonly nextHop: Uint8Array | undefined
  /** Last AS of the path (0 for an empty path: a route originated inside the AS). */
  readonly originAS: number
  readonly parts: readonly [path: number, communities: number, large: number, nextHop: number]
}

const listKey = (values: readonly number[]): string => values.join(',')
const hopKey = (hop: Uint8Array | undefined): string => (hop ? hop.join('.') : '')

/**
 * Attribute sets by id. An UPDATE's attributes are interned once for all its prefixes; each
 * route holds the id of its set, so a full table from several peers shares a few hundred
 * thousand sets, each made of shared paths and community lists.
 */
export class AttributeTable {
  readonly paths = new Interned<readonly number[]>()
  readonly communities = new Interned<readonly number[]>()
  readonly largeCommunities = new Interned<readonly number[]>()
  readonly nextHops = new Interned<Uint8Array | undefined>()
  readonly sets = new Interned<AttributeSet>()

  /** Id of the set of these attributes, counted once more (release it once per intern). */
  intern(asPath: readonly number[], communities: readonly number[], largeCommunities: readonly number[], nextHop: Uint8Array | undefined): number {
    const path = this.paths.intern(listKey(asPath), () => asPath.slice())
    const comms = this.communities.intern(listKey(communities), () => communities.slice())
    const large = this.largeCommunities.intern(listKey(largeCommunities), () => largeCommunities.slice())
    const hop = this.nextHops.intern(hopKey(nextHop), () => nextHop?.slice())
    let created = false
    const id = this.sets.intern(`${path}/${comms}/${large}/${hop}`, () => {
      created = true
      const p = this.paths.get(path)
      return {
        asPath: p,
        communities: this.communities.get(comms),
        largeCommunities: this.largeCommunities.get(large),
        nextHop: this.nextHops.get(hop),
        originAS: p.length > 0 ? p[p.length - 1]! : 0,
        parts: [path, comms, large, hop],
      }
    })
    // The parts are held once per set, not once per intern call.
    if (!created) {
      this.paths.release(path)
      this.communities.release(comms)
      this.largeCommunities.release(large)
      this.nextHops.release(hop)
    }
    return id
  }

  retain(id: number): void {
    this.sets.retain(id)
  }

  release(id: number): void {
    const freed = this.sets.release(id)
    if (freed) {
      const [path, comms, large, hop] = freed.parts
      this.paths.release(path)
      this.communities.release(comms)
      this.largeCommunities.release(large)
      this.nextHops.release(hop)
    }
  }

  get(id: number): AttributeSet {
    return this.sets.get(id)
  }
}
