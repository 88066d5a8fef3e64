import sharp from 'sharp';

import type { ImageContentType } from './asset';

/** The bytes are not an image sharp can decode (or not one of the accepted formats). */
export class ImageDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageDecodeError';
  }
}

const CONTENT_TYPE_BY_FORMAT: Readonly<Record<string, ImageContentType>> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

export interface ImageInfo {
  contentType: ImageContentType;
  width: number;
  height: number;
}

export interface RenderedImage extends ImageInfo {
  bytes: Buffer;
}

/** Reads the image header; the format comes from decoding, not from what the uploader declared. */
export async function inspectImage(bytes: Buffer): Promise<ImageInfo> {
  const metadata = await sharp(bytes)
    .metadata()
    .catch((rawErr: unknown) => {
      throw new ImageDecodeError('the bytes are not a decodable image', { cause: rawErr });
    });
  const contentType = metadata.format ? CONTENT_TYPE_BY_FORMAT[metadata.format] : undefined;
  if (!contentType) throw new ImageDecodeError(`image format "${String(metadata.format)}" is not png, jpeg or webp`);
  if (!metadata.width || !metadata.height) throw new ImageDecodeError('the image has no dimensions');
  return { contentType, width: metadata.width, height: metadata.height };
}

/**
 * Scales the image to exactly `width` pixels wide (aspect ratio kept, EXIF orientation applied),
 * encoded in `contentType`. An image narrower than `width` is enlarged: the caller asked for that width.
 */
export async function renderThumbnail(params: { bytes: Buffer; width: number; contentType: ImageContentType }): Promise<RenderedImage> {
  try {
    const resized = sharp(params.bytes).autoOrient().resize({ width: params.width });
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
