/**
 * The demo's made-up catalog and the tastes of its simulated users. Items belong to genres;
 * each simulated user loves one or two genres, so the federated model has a real structure
 * to learn and the demo page's ranking visibly follows what you click.
 */
import { seededUniform } from '../worker/model/random.ts'

export interface CatalogItem {
  readonly id: string
  readonly title: string
  readonly genre: string
}

export const GENRES = ['Mystery', 'Science', 'Cooking', 'Travel', 'History', 'Sports'] as const

const WORDS: Record<(typeof GENRES)[number], readonly string[]> = {
  Mystery: ['The Silent Key', 'Fog over Harlow', 'A Locked Room', 'The Ninth Guest', 'Ashes at Dawn', 'Cold Trail', 'The Last Alibi', 'Glass Witness', 'Night Ferry', 'The Quiet Clue'],
  Science: ['Deep Time', 'The Living Cell', 'Quantum Everyday', 'Stars in a Jar', 'The Gene Map', 'Storm Physics', 'Tiny Machines', 'Ocean Currents', 'The Brain Wired', 'Light Years'],
  Cooking: ['Bread at Home', 'One-Pot Week', 'Spice Routes', 'Simple Soups', 'The Fermenter', 'Pasta Daily', 'Green Plates', 'Baking Basics', 'Street Food', 'Slow Sunday'],
  Travel: ['Rail Across Asia', 'Islands North', 'The Long Road', 'Desert Nights', 'City Walks', 'Mountain Huts', 'River Towns', 'Coastlines', 'Winter Routes', 'Market Days'],
  History: ['Empires of Salt', 'The Printing Age', 'Silk and Steel', 'Forgotten Wars', 'Old Harbors', 'Kings and Clerks', 'The Plague Year', 'Lost Cities', 'Letters Home', 'Age of Sail'],
  Sports: ['The Long Run', 'Court Vision', 'Climbing Light', 'Tour Legends', 'The Perfect Swim', 'Derby Day', 'Pitch Notes', 'Ultra', 'Ice Time', 'Final Lap'],
}

/** 60 items, 10 per genre, with stable ids. */
export const CATALOG: readonly CatalogItem[] = GENRES.flatMap((genre) =>
  WORDS[genre].map((title, i) => ({ id: `${genre.toLowerCase()}-${i + 1}`, title, genre })),
)

export interface SimulatedInteraction {
  readonly item: string
  readonly kind: 'view' | 'click' | 'like' | 'dismiss'
}

/**
 * A simulated user: loves `favorites`, browses everything. Each call returns the next thing they
 * do: mostly engaging with a favorite genre, sometimes glancing at or dismissing another.
 */
export function simulatedUser(seed: number): { favorites: string[]; next: () => SimulatedInteraction } {
  const random = seededUniform(seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T
  const first = pick(GENRES)
  const second = random() < 0.5 ? pick(GENRES.filter((g) => g !== first)) : null
  const favorites: string[] = second === null ? [first] : [first, second]
  const loved = CATALOG.filter((item) => favorites.includes(item.genre))
  const others = CATALOG.filter((item) => !favorites.includes(item.genre))
  return {
    favorites,
    next() {
      const r = random()
      if (r < 0.7) return { item: pick(loved).id, kind: random() < 0.4 ? 'like' : 'click' }
      if (r < 0.9) return { item: pick(others).id, kind: 'view' }
      return { item: pick(others).id, kind: 'dismiss' }
    },
  }
}
