export const hasMongoProtocol = (url) => /mongodb(?:\+srv)?:\/\/.*/.test(url);
