import sharp from 'sharp';

import type { ImageContentType } from '../model/asset';

/** The bytes are not an image sharp can decode (or not one of the accepted formats). */
export class ImageDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageDecodeError';
  }
}

/**
 * The largest image (width × height) the thumbnail job decodes: a few bytes of PNG can declare
 * gigapixels, and decoding them costs memory and CPU in proportion. Bigger images are refused from
 * their header, and sharp itself is held to the same limit.
 */
export const MAX_INPUT_PIXELS = 40_000_000;

const CONTENT_TYPE_BY_FORMAT: Readonly<Record<string, ImageContentType>> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

export interface ImageInfo {
  contentType: ImageContentType;
  /** As displayed: after the EXIF orientation is applied (a rotated photo swaps them). */
  width: number;
  height: number;
}

export interface RenderedImage extends ImageInfo {
  bytes: Buffer;
}

/** Reads the image header only (no pixels are decoded); the format comes from it, not from what the uploader declared. */
export async function inspectImage(bytes: Buffer): Promise<ImageInfo> {
  // No pixel limit here: the header of a huge image must be readable, so the caller can refuse it by its size.
  const metadata = await sharp(bytes, { limitInputPixels: false })
    .metadata()
    .catch((rawErr: unknown) => {
      throw new ImageDecodeError('the bytes are not a decodable image', { cause: rawErr });
    });
  const contentType = metadata.format ? CONTENT_TYPE_BY_FORMAT[metadata.format] : undefined;
  if (!contentType) throw new ImageDecodeError(`image format "${String(metadata.format)}" is not png, jpeg or webp`);
  if (!metadata.width || !metadata.height) throw new ImageDecodeError('the image has no dimensions');
  const oriented = metadata.autoOrient ?? { width: metadata.width, height: metadata.height };
  return { contentType, width: oriented.width, height: oriented.height };
}

/**
 * The size a thumbnail of `width` comes out at: never wider than the source (a thumbnail never
 * enlarges), the aspect ratio kept as sharp keeps it.
 */
export function thumbnailSizeOf(source: { width: number; height: number }, width: number): { width: number; height: number } {
  const outWidth = Math.min(width, source.width);
  return { width: outWidth, height: Math.max(1, Math.round((source.height * outWidth) / source.width)) };
}

/**
 * Scales the image to `width` pixels wide (aspect ratio kept, EXIF orientation applied), encoded in
 * `contentType`. An image narrower than `width` keeps its own width: it is never enlarged (a 1-pixel
 * wide image asked for 4096 would otherwise produce gigapixels). Images over `maxInputPixels` fail.
 */
export async function renderThumbnail(params: { bytes: Buffer; width: number; contentType: ImageContentType; maxInputPixels?: number }): Promise<RenderedImage> {
  try {
    const resized = sharp(params.bytes, { limitInputPixels: params.maxInputPixels ?? MAX_INPUT_PIXELS }).autoOrient().resize({ width: params.width, withoutEnlargement: true });
    const encoded =
      params.contentType === 'image/png'
        ? resized.png({ compressionLevel: 9 })
        : params.contentType === 'image/jpeg'
          ? resized.jpeg({ quality: 80, mozjpeg: true })
          : resized.webp({ quality: 80 });
    const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
    return { bytes: data, contentType: params.contentType, width: info.width, height: info.height };
  } catch (rawErr) {
    // A header can parse while the pixel data is truncated or corrupt; that only shows up here.
    throw new ImageDecodeError('the image could not be decoded', { cause: rawErr });
  }
}
