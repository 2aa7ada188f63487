import type { ColumnType, Generated } from 'kysely'

export interface PhoneNumber {
  type: string
  number: string
}

export interface UsersTable {
  id: number
  username: string
  password_hash: string
  first_name: string
  last_name: string
  street_address: string
  city: string
  state: string
  postal_code: string
  phone_numbers: ColumnType<PhoneNumber[], string, string>
  /** Bumped by every profile update: the load side compares it to find stale reads. */
  version: Generated<number>
  updated_at: Generated<Date>
}

export interface PhotosTable {
  id: Generated<number>
  user_id: number
  caption: string
  /** Hue of the generated image: the photo's "content". */
  hue: number
  created_at: Generated<Date>
}

export interface PhotoThumbnailsTable {
  photo_id: number
  jpeg: Buffer
  worker: string
  processed_at: Generated<Date>
}

export interface PhotoOriginalsTable {
  photo_id: number
  bytes: Buffer
}

export interface Database {
  users: UsersTable
  photos: PhotosTable
  photo_thumbnails: PhotoThumbnailsTable
  photo_originals: PhotoOriginalsTable
}

/** The user as the API returns it (the seed's JSON shape). */
export interface UserJson {
  id: number
  firstName: string
  lastName: string
  address: { streetAddress: string; city: string; state: string; postalCode: string }
  phoneNumbers: PhoneNumber[]
}
